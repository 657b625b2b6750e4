// Adafactor (huggingface/transformers src/transformers/optimization.py, class Adafactor).
// The tensor ops and their order mirror the Python step so float32 results agree bit for bit
// where the kernels are the same; the scalar lr is computed on the host with the roundings
// the Python code gets from mixing 0-d tensors and Python floats.
#include "train/adafactor.h"

#include <cmath>

#include <ATen/ATen.h>
#include <torch/serialize/archive.h>

#include "core/error.h"
#include "train/optimizer_args.h"

namespace ls::train {
namespace {

bool is_low_precision(c10::ScalarType t) { return t == at::kHalf || t == at::kBFloat16; }

// A double as the 0-d tensor of dtype t would hold it (t is float32 or float64 here).
double round_to(c10::ScalarType t, double x) {
  return t == at::kDouble ? x : static_cast<double>(static_cast<float>(x));
}

// transformers' _rms: tensor.norm(2) / numel**0.5; torch's Python Tensor.norm(2) is
// linalg.vector_norm(t, 2, dim=None), so call that directly.
at::Tensor rms(const at::Tensor& t) {
  return at::linalg_vector_norm(t, 2, c10::nullopt, false, c10::nullopt) / std::sqrt(double(t.numel()));
}

struct StepLr {
  double value;
  bool is_tensor;  // Python got a 0-d tensor (RMS * step size), not a float
};

// transformers' _get_lr(group, state) for step t and RMS rms (held in dtype t_rms).
StepLr step_lr(const AdafactorOptions& o, int64_t step, double rms, c10::ScalarType t_rms) {
  double rel = o.lr().value_or(0.0);
  if (o.relative_step()) {
    double min_step = o.warmup_init() ? 1e-6 * double(step) : 1e-2;
    rel = std::min(min_step, 1.0 / std::sqrt(double(step)));
  }
  if (!o.scale_parameter()) return {rel, false};
  // Python's max(eps, RMS) picks the tensor only when RMS > eps (compared in RMS's dtype);
  // the product tensor * float is then rounded to that dtype.
  double eps2 = std::get<1>(o.eps());
  if (rms > round_to(t_rms, eps2)) return {round_to(t_rms, rms * round_to(t_rms, rel)), true};
  return {eps2 * rel, false};
}

void check_state_matches(const AdafactorParamState& s, bool factored, bool first_moment) {
  bool ok = factored ? (s.exp_avg_sq_row().defined() && s.exp_avg_sq_col().defined())
                     : s.exp_avg_sq().defined();
  LS_CHECK(ok && (!first_moment || s.exp_avg().defined()),
           "Adafactor: the loaded state of a parameter lacks ",
           !ok ? (factored ? "exp_avg_sq_row/col" : "exp_avg_sq") : "exp_avg (beta1)",
           "; resume with the optimizer_args the state was saved with");
}

// transformers keeps state on the gradient's device and dtype (`.to(grad)` each step).
void move_state_to(AdafactorParamState& s, const at::Tensor& grad) {
  for (torch::Tensor* t : {&s.exp_avg(), &s.exp_avg_sq_row(), &s.exp_avg_sq_col(), &s.exp_avg_sq()}) {
    if (t->defined()) *t = t->to(grad);
  }
}

std::unique_ptr<AdafactorParamState> init_state(const at::Tensor& grad, bool factored,
                                                bool first_moment) {
  auto s = std::make_unique<AdafactorParamState>();
  if (first_moment) s->exp_avg(at::zeros_like(grad));
  if (factored) {
    auto shape = grad.sizes().vec();
    std::vector<int64_t> row(shape.begin(), shape.end() - 1);
    std::vector<int64_t> col(shape.begin(), shape.end() - 2);
    col.push_back(shape.back());
    s->exp_avg_sq_row(at::zeros(row, grad.options()));
    s->exp_avg_sq_col(at::zeros(col, grad.options()));
  } else {
    s->exp_avg_sq(at::zeros_like(grad));
  }
  return s;
}

// torch 2.x keys optimizer state by the parameter's TensorImpl (as its own optimizers do).
void* state_key(const at::Tensor& p) { return p.unsafeGetTensorImpl(); }

// The checks that do not involve the lr (which kohya's args never carry).
void check_ranges(const AdafactorOptions& o) {
  LS_CHECK(std::get<0>(o.eps()) >= 0 && std::get<1>(o.eps()) >= 0,
           "Adafactor: eps must be two non-negative numbers, got ", std::get<0>(o.eps()), ",",
           std::get<1>(o.eps()));
  LS_CHECK(o.clip_threshold() > 0, "Adafactor: clip_threshold must be > 0, got ", o.clip_threshold());
  LS_CHECK(o.decay_rate() <= 0, "Adafactor: decay_rate must be <= 0 (default -0.8), got ",
           o.decay_rate());
  LS_CHECK(!o.beta1() || (*o.beta1() >= 0 && *o.beta1() < 1),
           "Adafactor: beta1 must be in [0, 1) or None, got ", o.beta1().value_or(0));
  LS_CHECK(o.weight_decay() >= 0, "Adafactor: weight_decay must be >= 0, got ", o.weight_decay());
}

}  // namespace

void validate(const AdafactorOptions& o) {
  LS_CHECK(!(o.lr() && o.relative_step()), "Adafactor: cannot combine a manual lr (", *o.lr(),
           ") with relative_step=True; drop the lr or set relative_step=False");
  LS_CHECK(!o.warmup_init() || o.relative_step(),
           "Adafactor: warmup_init=True requires relative_step=True");
  LS_CHECK(o.relative_step() || o.lr(),
           "Adafactor: relative_step=False needs an lr (e.g. learning_rate=1e-4)");
  LS_CHECK(!o.lr() || *o.lr() >= 0, "Adafactor: lr must be >= 0, got ", o.lr().value_or(0));
  check_ranges(o);
}

Adafactor::Adafactor(std::vector<torch::optim::OptimizerParamGroup> param_groups,
                     AdafactorOptions defaults)
    : Optimizer(std::move(param_groups), std::make_unique<AdafactorOptions>(defaults)) {
  validate(defaults);
  for (const auto& group : param_groups_) {
    validate(static_cast<const AdafactorOptions&>(group.options()));
    for (const auto& p : group.params()) {
      LS_CHECK(p.is_floating_point(), "Adafactor: parameters must be floating point, got ",
               p.scalar_type());
    }
  }
}

Adafactor::Adafactor(std::vector<torch::Tensor> params, AdafactorOptions defaults)
    : Adafactor(std::vector<torch::optim::OptimizerParamGroup>{
                    torch::optim::OptimizerParamGroup(std::move(params))},
                std::move(defaults)) {}

torch::Tensor Adafactor::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : param_groups_) {
    const auto& options = static_cast<const AdafactorOptions&>(group.options());
    for (auto& p : group.params()) {
      if (p.grad().defined()) step_param(p, options);
    }
  }
  return loss;
}

void Adafactor::step_param(torch::Tensor& p, const AdafactorOptions& o) {
  at::Tensor grad = p.grad();
  LS_CHECK(!grad.is_sparse(), "Adafactor: sparse gradients are not supported");
  if (is_low_precision(grad.scalar_type())) grad = grad.to(at::kFloat);
  const bool factored = grad.dim() >= 2;
  const bool first_moment = o.beta1().has_value();

  auto& slot = state_[state_key(p)];
  if (!slot) slot = init_state(grad, factored, first_moment);
  auto& s = static_cast<AdafactorParamState&>(*slot);
  check_state_matches(s, factored, first_moment);
  move_state_to(s, grad);

  // fp16/bf16 parameters are updated in a float32 copy and written back at the end.
  at::Tensor p32 = is_low_precision(p.scalar_type()) ? p.to(at::kFloat) : p;
  s.step(s.step() + 1);
  s.rms(rms(p32).item<double>());
  const StepLr lr = step_lr(o, s.step(), s.rms(), p32.scalar_type());
  s.lr(lr.value);

  const double beta2t = 1.0 - std::pow(double(s.step()), o.decay_rate());
  at::Tensor update = grad.pow(2).add(std::get<0>(o.eps()));
  if (factored) {
    at::Tensor& row = s.exp_avg_sq_row();  // [*, R]
    at::Tensor& col = s.exp_avg_sq_col();  // [*, C]
    row.mul_(beta2t).add_(update.mean(-1), 1.0 - beta2t);
    col.mul_(beta2t).add_(update.mean(-2), 1.0 - beta2t);
    at::Tensor r_factor = (row / row.mean(-1, /*keepdim=*/true)).rsqrt_().unsqueeze(-1);  // [*, R, 1]
    at::Tensor c_factor = col.unsqueeze(-2).rsqrt();                                        // [*, 1, C]
    update = at::mul(r_factor, c_factor);
    update.mul_(grad);
  } else {
    at::Tensor& v = s.exp_avg_sq();
    v.mul_(beta2t).add_(update, 1.0 - beta2t);
    update = v.rsqrt().mul_(grad);
  }
  update.div_((rms(update) / o.clip_threshold()).clamp_(1.0));
  update.mul_(lr.value);

  if (first_moment) {
    const double beta1 = *o.beta1();
    s.exp_avg().mul_(beta1).add_(update, 1 - beta1);
    update = s.exp_avg();
  }
  if (o.weight_decay() != 0) {
    // Python's -wd * lr: a float product, or a 0-d tensor product when lr is a tensor.
    const c10::ScalarType t = p32.scalar_type();
    const double alpha = lr.is_tensor ? round_to(t, round_to(t, -o.weight_decay()) * lr.value)
                                      : -o.weight_decay() * lr.value;
    p32.add_(p32, alpha);
  }
  p32.add_(-update);
  if (is_low_precision(p.scalar_type())) p.copy_(p32);
}

const AdafactorParamState* Adafactor::param_state(const torch::Tensor& p) const {
  auto it = state_.find(state_key(p));
  return it == state_.end() ? nullptr : static_cast<const AdafactorParamState*>(it->second.get());
}

std::vector<c10::optional<double>> Adafactor::group_lrs() const {
  std::vector<c10::optional<double>> lrs;
  for (const auto& group : param_groups_) {
    const AdafactorParamState* s = group.params().empty() ? nullptr : param_state(group.params()[0]);
    lrs.push_back(s ? c10::optional<double>(s->lr()) : c10::nullopt);
  }
  return lrs;
}

OwnLr Adafactor::own_lr() const {
  OwnLr own;
  for (const auto& group : param_groups_)
    own.groups.push_back(static_cast<const AdafactorOptions&>(group.options()).relative_step());
  own.lrs = [this] {
    std::vector<std::optional<double>> lrs;
    for (const auto& lr : group_lrs()) lrs.push_back(lr ? std::optional<double>(*lr) : std::nullopt);
    return lrs;
  };
  return own;
}

void AdafactorOptions::serialize(torch::serialize::OutputArchive& archive) const {
  if (lr()) archive.write("lr", c10::IValue(*lr()));
  archive.write("eps0", c10::IValue(std::get<0>(eps())));
  archive.write("eps1", c10::IValue(std::get<1>(eps())));
  archive.write("clip_threshold", c10::IValue(clip_threshold()));
  archive.write("decay_rate", c10::IValue(decay_rate()));
  if (beta1()) archive.write("beta1", c10::IValue(*beta1()));
  archive.write("weight_decay", c10::IValue(weight_decay()));
  archive.write("scale_parameter", c10::IValue(scale_parameter()));
  archive.write("relative_step", c10::IValue(relative_step()));
  archive.write("warmup_init", c10::IValue(warmup_init()));
}

void AdafactorOptions::serialize(torch::serialize::InputArchive& archive) {
  c10::IValue v;
  lr(archive.try_read("lr", v) ? c10::optional<double>(v.toDouble()) : c10::nullopt);
  double e0 = std::get<0>(eps()), e1 = std::get<1>(eps());
  if (archive.try_read("eps0", v)) e0 = v.toDouble();
  if (archive.try_read("eps1", v)) e1 = v.toDouble();
  eps(std::make_tuple(e0, e1));
  if (archive.try_read("clip_threshold", v)) clip_threshold(v.toDouble());
  if (archive.try_read("decay_rate", v)) decay_rate(v.toDouble());
  beta1(archive.try_read("beta1", v) ? c10::optional<double>(v.toDouble()) : c10::nullopt);
  if (archive.try_read("weight_decay", v)) weight_decay(v.toDouble());
  if (archive.try_read("scale_parameter", v)) scale_parameter(v.toBool());
  if (archive.try_read("relative_step", v)) relative_step(v.toBool());
  if (archive.try_read("warmup_init", v)) warmup_init(v.toBool());
}

double AdafactorOptions::get_lr() const { return lr().value_or(0.0); }

void AdafactorOptions::set_lr(const double new_lr) { lr(new_lr); }

void AdafactorParamState::serialize(torch::serialize::OutputArchive& archive) const {
  archive.write("step", c10::IValue(step()));
  archive.write("rms", c10::IValue(rms()));
  archive.write("lr", c10::IValue(lr()));
  if (exp_avg().defined()) archive.write("exp_avg", exp_avg(), /*is_buffer=*/true);
  if (exp_avg_sq_row().defined()) archive.write("exp_avg_sq_row", exp_avg_sq_row(), true);
  if (exp_avg_sq_col().defined()) archive.write("exp_avg_sq_col", exp_avg_sq_col(), true);
  if (exp_avg_sq().defined()) archive.write("exp_avg_sq", exp_avg_sq(), true);
}

void AdafactorParamState::serialize(torch::serialize::InputArchive& archive) {
  c10::IValue v;
  archive.read("step", v);
  step(v.toInt());
  archive.read("rms", v);
  rms(v.toDouble());
  archive.read("lr", v);
  lr(v.toDouble());
  archive.try_read("exp_avg", exp_avg(), true);
  archive.try_read("exp_avg_sq_row", exp_avg_sq_row(), true);
  archive.try_read("exp_avg_sq_col", exp_avg_sq_col(), true);
  archive.try_read("exp_avg_sq", exp_avg_sq(), true);
}

void Adafactor::save(torch::serialize::OutputArchive& archive) const {
  torch::optim::serialize<AdafactorParamState, AdafactorOptions>(archive, *this);
}

void Adafactor::load(torch::serialize::InputArchive& archive) {
  torch::optim::serialize<AdafactorParamState, AdafactorOptions>(archive, *this);
}

AdafactorOptions parse_adafactor_args(const std::vector<std::string>& optimizer_args) {
  static const std::vector<std::string> kKeys = {
      "eps", "clip_threshold", "decay_rate", "beta1", "weight_decay", "scale_parameter",
      "relative_step", "warmup_init"};
  const std::string what = "Adafactor";
  AdafactorOptions o;
  for (const OptimizerArg& arg : split_optimizer_args(optimizer_args)) {
    if (arg.key == "eps") {
      auto e = arg_doubles(arg, 2, what);
      o.eps(std::make_tuple(e[0], e[1]));
    } else if (arg.key == "clip_threshold") {
      o.clip_threshold(arg_double(arg, what));
    } else if (arg.key == "decay_rate") {
      o.decay_rate(arg_double(arg, what));
    } else if (arg.key == "beta1") {
      std::optional<double> beta1 = arg_optional_double(arg, what);
      o.beta1(beta1 ? c10::optional<double>(*beta1) : c10::nullopt);
    } else if (arg.key == "weight_decay") {
      o.weight_decay(arg_double(arg, what));
    } else if (arg.key == "scale_parameter") {
      o.scale_parameter(arg_bool(arg, what));
    } else if (arg.key == "relative_step") {
      o.relative_step(arg_bool(arg, what));
    } else if (arg.key == "warmup_init") {
      o.warmup_init(arg_bool(arg, what));
    } else if (arg.key == "lr") {
      LS_FAIL("optimizer_args: Adafactor takes its lr from learning_rate (or unet_lr/text_encoder_lr), "
              "not from optimizer_args");
    } else {
      fail_unknown_arg(arg, what, kKeys);
    }
  }
  // kohya: warmup_init needs the relative step, so it switches relative_step on.
  if (o.warmup_init()) o.relative_step(true);
  check_ranges(o);
  return o;
}

}  // namespace ls::train
