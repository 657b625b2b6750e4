// Prodigy (prodigyopt 1.1.2, prodigyopt/prodigy.py, class Prodigy; Mishchenko & Defazio 2023).
// The tensor ops and their order mirror the Python step, and the scalars (d, dlr, the numerator
// and denominator sums) are doubles combined in Python's order, so trajectories (float32 and bf16)
// agree bit for bit where the kernels are the same. Two passes, as the reference: the first folds this
// step's gradients into the moments and the d statistics with the old d; the second moves the
// parameters with the new d in the denominator but the old d in the step size dlr.
#include "train/prodigy.h"

#include <cmath>

#include <ATen/ATen.h>
#include <torch/serialize/archive.h>

#include "core/error.h"
#include "train/optimizer_args.h"

namespace ls::train {
namespace {

// torch 2.x keys optimizer state by the parameter's TensorImpl (as its own optimizers do).
void* state_key(const at::Tensor& p) { return p.unsafeGetTensorImpl(); }

// p.flatten()[::slice_p]: a strided view, as the reference's statistics see the parameter.
at::Tensor sliced(const at::Tensor& t, int64_t slice_p) {
  return t.flatten().slice(0, 0, c10::nullopt, slice_p);
}

// A float that Python passes where the op takes a Tensor (`exp_avg.mul_(beta1)`, `.add_(d * eps)`)
// becomes a wrapped-number 0-d tensor, used at the op's compute precision. libtorch's in-place
// `mul_(Scalar)` rounds it to the tensor's dtype first (bf16: 0.9 -> 0.8984375), so the port passes
// such numbers as Python does. float32 gives the same bits either way.
at::Tensor py_number(double x) {
  at::Tensor t = at::scalar_to_tensor(x);
  t.unsafeGetTensorImpl()->set_wrapped_number(true);
  return t;
}

std::unique_ptr<ProdigyParamState> init_state(const at::Tensor& p, int64_t slice_p, bool first_moment) {
  auto st = std::make_unique<ProdigyParamState>();
  st->s(at::zeros_like(sliced(p, slice_p)));
  // An all-zero parameter (a LoRA up weight) keeps a 0-d zero: it broadcasts to the same numbers.
  st->p0(p.any().item<bool>() ? sliced(p, slice_p).clone() : at::zeros({}, p.options()));
  if (first_moment) st->exp_avg(at::zeros_like(p));
  st->exp_avg_sq(at::zeros_like(p));
  return st;
}

// torch's Optimizer.load_state_dict casts loaded state to its parameter's device and dtype; the
// libtorch loader leaves it on the CPU, so the first step after a resume does it.
void move_state_to(ProdigyParamState& st, const at::Tensor& p) {
  for (torch::Tensor* t : {&st.s(), &st.p0(), &st.exp_avg(), &st.exp_avg_sq()}) {
    if (t->defined() && (t->device() != p.device() || t->scalar_type() != p.scalar_type()))
      *t = t->to(p.device(), p.scalar_type());
  }
}

void check_state_matches(const ProdigyParamState& st, const at::Tensor& p, int64_t slice_p, bool first_moment) {
  const int64_t n = (p.numel() + slice_p - 1) / slice_p;
  LS_CHECK(st.s().defined() && st.s().numel() == n && st.p0().defined() && st.exp_avg_sq().defined() &&
               st.exp_avg_sq().sizes() == p.sizes() && (!first_moment || st.exp_avg().defined()),
           "Prodigy: the loaded state of a parameter does not fit it (slice_p, betas or the network changed); ",
           "resume with the optimizer_args and network the state was saved with");
}

const ProdigyOptions& options_of(const torch::optim::OptimizerParamGroup& g) {
  return static_cast<const ProdigyOptions&>(g.options());
}

}  // namespace

void validate(const ProdigyOptions& o) {
  LS_CHECK(o.d0() > 0, "Prodigy: d0 must be > 0 (default 1e-6), got ", o.d0());
  LS_CHECK(o.eps() > 0, "Prodigy: eps must be > 0 (default 1e-8), got ", o.eps());
  const double b1 = std::get<0>(o.betas()), b2 = std::get<1>(o.betas());
  LS_CHECK(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1, "Prodigy: betas must both be in [0, 1), got ", b1, ",", b2);
  LS_CHECK(o.slice_p() >= 1, "Prodigy: slice_p must be >= 1 (default 1), got ", o.slice_p());
  LS_CHECK(o.lr() >= 0, "Prodigy: lr must be >= 0, got ", o.lr());
}

Prodigy::Prodigy(std::vector<torch::optim::OptimizerParamGroup> param_groups, ProdigyOptions defaults)
    : Optimizer(std::move(param_groups), std::make_unique<ProdigyOptions>(defaults)) {
  validate(defaults);
  // prodigyopt checks the constructor's lr only; a group may run at 0 (a frozen text encoder).
  LS_CHECK(defaults.lr() > 0, "Prodigy: lr must be > 0 (kohya users pass learning_rate = 1), got ", defaults.lr());
  for (auto& group : param_groups_) {
    auto& o = static_cast<ProdigyOptions&>(group.options());
    validate(o);
    // The constructor's d0 seeds every group's estimate, also where a group overrides d0.
    if (!o.d()) o.d(defaults.d().value_or(defaults.d0()));
    if (!o.d_max()) o.d_max(defaults.d_max().value_or(defaults.d0()));
    for (const auto& p : group.params())
      LS_CHECK(p.is_floating_point(), "Prodigy: parameters must be floating point, got ", p.scalar_type());
  }
}

Prodigy::Prodigy(std::vector<torch::Tensor> params, ProdigyOptions defaults)
    : Prodigy(std::vector<torch::optim::OptimizerParamGroup>{torch::optim::OptimizerParamGroup(std::move(params))},
              std::move(defaults)) {}

namespace {

// What one step reads from group 0 (prodigyopt's `group = self.param_groups[0]`) and the lr.
struct StepScalars {
  double beta1 = 0, beta2 = 0, beta3 = 0;
  double d = 0;    // before the step
  double dlr = 0;  // d * lr * bias correction, with that d
  bool decouple = true;
};

StepScalars step_scalars(const std::vector<torch::optim::OptimizerParamGroup>& groups) {
  const ProdigyOptions& g0 = options_of(groups.front());
  StepScalars sc;
  sc.beta1 = std::get<0>(g0.betas());
  sc.beta2 = std::get<1>(g0.betas());
  sc.beta3 = g0.beta3() ? *g0.beta3() : std::sqrt(sc.beta2);
  sc.d = *g0.d();
  sc.decouple = g0.decouple();
  double lr = 0;
  for (const auto& group : groups) lr = std::max(lr, options_of(group).lr());
  for (const auto& group : groups) {
    const double group_lr = options_of(group).lr();
    LS_CHECK(group_lr == lr || group_lr == 0.0, "Prodigy: every parameter group needs the same lr (or 0), got ",
             group_lr, " and ", lr, "; set unet_lr and text_encoder_lr equal (kohya: learning_rate = 1)");
  }
  // Python's (1 - beta2**(k+1))**0.5 / (1 - beta1**(k+1)): pow, not sqrt, as Python evaluates it.
  const double kp1 = double(g0.k() + 1);
  const double bias_correction =
      g0.use_bias_correction() ? std::pow(1 - std::pow(sc.beta2, kp1), 0.5) / (1 - std::pow(sc.beta1, kp1)) : 1.0;
  sc.dlr = sc.d * lr * bias_correction;
  return sc;
}

using Grads = std::vector<std::vector<at::Tensor>>;  // per group, per parameter (undefined: none)
using StateMap = ska::flat_hash_map<void*, std::unique_ptr<torch::optim::OptimizerParamState>>;

struct Sums {
  double delta_numerator = 0, d_denom = 0;
};

// Pass 1, with the old d: states made, this step's gradients folded into the moments and into the
// numerator and denominator of d. The coupled decay goes into a copy of the gradient (prodigyopt
// adds it to p.grad in place; the numbers are the same, the caller's gradient is left alone).
Sums accumulate(std::vector<torch::optim::OptimizerParamGroup>& groups, StateMap& state, const StepScalars& sc,
                Grads& grads) {
  Sums sums;
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    const ProdigyOptions& o = options_of(groups[gi]);
    for (auto& p : groups[gi].params()) {
      at::Tensor grad = p.grad();
      grads[gi].push_back(grad);
      if (!grad.defined()) continue;
      LS_CHECK(!grad.is_sparse(), "Prodigy: sparse gradients are not supported");
      if (o.weight_decay() != 0 && !sc.decouple) grad = grads[gi].back() = grad.add(p, o.weight_decay());
      auto& slot = state[state_key(p)];
      if (!slot) slot = init_state(p, o.slice_p(), sc.beta1 > 0);
      auto& st = static_cast<ProdigyParamState&>(*slot);
      move_state_to(st, p);
      check_state_matches(st, p, o.slice_p(), sc.beta1 > 0);
      if (!(o.lr() > 0)) continue;  // a frozen group's moments stay
      const at::Tensor sliced_grad = sliced(grad, o.slice_p());
      const double scale = sc.d / o.d0();  // d / d0 keeps the sums away from float32's small end
      sums.delta_numerator +=
          scale * sc.dlr * at::dot(sliced_grad, st.p0() - sliced(p, o.slice_p())).item<double>();
      if (sc.beta1 > 0) st.exp_avg().mul_(py_number(sc.beta1)).add_(grad, sc.d * (1 - sc.beta1));
      st.exp_avg_sq().mul_(py_number(sc.beta2)).addcmul_(grad, grad, sc.d * sc.d * (1 - sc.beta2));
      st.s().mul_(py_number(sc.beta3)).add_(sliced_grad, o.safeguard_warmup() ? scale * sc.d : scale * sc.dlr);
      sums.d_denom += st.s().abs().sum().item<double>();
    }
  }
  return sums;
}

// Pass 2: the parameters move by dlr (old d) over sqrt(v) + d * eps (new d), each group's decay
// (also in a frozen group) and step counter.
void move_params(std::vector<torch::optim::OptimizerParamGroup>& groups, StateMap& state, const StepScalars& sc,
                 double d, const Grads& grads) {
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    auto& o = static_cast<ProdigyOptions&>(groups[gi].options());
    auto& params = groups[gi].params();
    for (size_t pi = 0; pi < params.size(); ++pi) {
      const at::Tensor& grad = grads[gi][pi];
      if (!grad.defined()) continue;
      at::Tensor& p = params[pi];
      auto& st = static_cast<ProdigyParamState&>(*state.at(state_key(p)));
      st.step(st.step() + 1);
      const at::Tensor denom = st.exp_avg_sq().sqrt().add_(py_number(d * o.eps()));
      if (o.weight_decay() != 0 && sc.decouple) p.add_(p, -o.weight_decay() * sc.dlr);
      if (sc.beta1 > 0) {
        p.addcdiv_(st.exp_avg(), denom, -sc.dlr);
      } else {
        p.addcdiv_(grad, denom, -sc.dlr * d);
      }
    }
    o.k(o.k() + 1);
  }
}

}  // namespace

torch::Tensor Prodigy::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  const StepScalars sc = step_scalars(param_groups_);
  Grads grads(param_groups_.size());
  const Sums sums = accumulate(param_groups_, state_, sc, grads);
  // Nothing to learn from (every lr 0, or no gradient): prodigyopt returns before moving anything.
  if (sums.d_denom == 0) return loss;

  const ProdigyOptions& g0 = options_of(param_groups_.front());
  const double numerator = g0.d_numerator() * sc.beta3 + sums.delta_numerator;
  const double d_hat = g0.d_coef() * numerator / sums.d_denom;
  double d = sc.d, d_max = *g0.d_max();
  // prodigyopt compares with the d0 of the last group (its loop variable outlives the loop).
  if (d == options_of(param_groups_.back()).d0()) d = std::max(d, d_hat);
  d_max = std::max(d_max, d_hat);
  d = std::min(d_max, d * g0.growth_rate());
  for (auto& group : param_groups_) {  // every group holds the one estimate
    auto& o = static_cast<ProdigyOptions&>(group.options());
    o.d_numerator(numerator).d_denom(sums.d_denom).d(d).d_max(d_max).d_hat(d_hat);
  }
  move_params(param_groups_, state_, sc, d, grads);
  return loss;
}

const ProdigyParamState* Prodigy::param_state(const torch::Tensor& p) const {
  auto it = state_.find(state_key(p));
  return it == state_.end() ? nullptr : static_cast<const ProdigyParamState*>(it->second.get());
}

ProdigyEstimate Prodigy::estimate() const {
  const ProdigyOptions& o = options_of(param_groups_.front());
  return {*o.d(), *o.d_max(), o.d_numerator(), o.k(), o.d_denom(), o.d_hat()};
}

void ProdigyOptions::serialize(torch::serialize::OutputArchive& archive) const {
  archive.write("lr", c10::IValue(lr()));
  archive.write("beta1", c10::IValue(std::get<0>(betas())));
  archive.write("beta2", c10::IValue(std::get<1>(betas())));
  if (beta3()) archive.write("beta3", c10::IValue(*beta3()));
  archive.write("eps", c10::IValue(eps()));
  archive.write("weight_decay", c10::IValue(weight_decay()));
  archive.write("decouple", c10::IValue(decouple()));
  archive.write("use_bias_correction", c10::IValue(use_bias_correction()));
  archive.write("safeguard_warmup", c10::IValue(safeguard_warmup()));
  archive.write("d0", c10::IValue(d0()));
  archive.write("d_coef", c10::IValue(d_coef()));
  archive.write("growth_rate", c10::IValue(growth_rate()));
  archive.write("slice_p", c10::IValue(slice_p()));
  if (d()) archive.write("d", c10::IValue(*d()));
  if (d_max()) archive.write("d_max", c10::IValue(*d_max()));
  archive.write("d_numerator", c10::IValue(d_numerator()));
  archive.write("k", c10::IValue(k()));
  if (d_denom()) archive.write("d_denom", c10::IValue(*d_denom()));
  if (d_hat()) archive.write("d_hat", c10::IValue(*d_hat()));
}

void ProdigyOptions::serialize(torch::serialize::InputArchive& archive) {
  c10::IValue v;
  const auto read_double = [&](const char* key) { archive.read(key, v); return v.toDouble(); };
  const auto read_bool = [&](const char* key) { archive.read(key, v); return v.toBool(); };
  const auto read_optional = [&](const char* key) {
    return archive.try_read(key, v) ? c10::optional<double>(v.toDouble()) : c10::nullopt;
  };
  lr(read_double("lr"));
  const double b1 = read_double("beta1");
  betas(std::make_tuple(b1, read_double("beta2")));
  beta3(read_optional("beta3"));
  eps(read_double("eps"));
  weight_decay(read_double("weight_decay"));
  decouple(read_bool("decouple"));
  use_bias_correction(read_bool("use_bias_correction"));
  safeguard_warmup(read_bool("safeguard_warmup"));
  d0(read_double("d0"));
  d_coef(read_double("d_coef"));
  growth_rate(read_double("growth_rate"));
  archive.read("slice_p", v);
  slice_p(v.toInt());
  d(read_optional("d"));
  d_max(read_optional("d_max"));
  d_numerator(read_double("d_numerator"));
  archive.read("k", v);
  k(v.toInt());
  d_denom(read_optional("d_denom"));
  d_hat(read_optional("d_hat"));
}

double ProdigyOptions::get_lr() const { return lr(); }

void ProdigyOptions::set_lr(const double new_lr) { lr(new_lr); }

void ProdigyParamState::serialize(torch::serialize::OutputArchive& archive) const {
  archive.write("step", c10::IValue(step()));
  archive.write("s", s(), /*is_buffer=*/true);
  archive.write("p0", p0(), true);
  archive.write("exp_avg_sq", exp_avg_sq(), true);
  if (exp_avg().defined()) archive.write("exp_avg", exp_avg(), true);
}

void ProdigyParamState::serialize(torch::serialize::InputArchive& archive) {
  c10::IValue v;
  archive.read("step", v);
  step(v.toInt());
  archive.read("s", s(), true);
  archive.read("p0", p0(), true);
  archive.read("exp_avg_sq", exp_avg_sq(), true);
  archive.try_read("exp_avg", exp_avg(), true);
}

void Prodigy::save(torch::serialize::OutputArchive& archive) const {
  torch::optim::serialize<ProdigyParamState, ProdigyOptions>(archive, *this);
}

void Prodigy::load(torch::serialize::InputArchive& archive) {
  torch::optim::serialize<ProdigyParamState, ProdigyOptions>(archive, *this);
  for (const auto& group : param_groups_) {
    const ProdigyOptions& o = options_of(group);
    LS_CHECK(o.d() && o.d_max(), "Prodigy: the loaded state has no d estimate; it was not written by Prodigy");
  }
}

ProdigyOptions parse_prodigy_args(const std::vector<std::string>& optimizer_args) {
  static const std::vector<std::string> kKeys = {
      "betas", "beta3", "eps", "weight_decay", "decouple", "use_bias_correction", "safeguard_warmup",
      "d0", "d_coef", "growth_rate", "slice_p", "fsdp_in_use"};
  const std::string what = "Prodigy";
  ProdigyOptions o;
  for (const OptimizerArg& arg : split_optimizer_args(optimizer_args)) {
    if (arg.key == "betas") {
      auto b = arg_doubles(arg, 2, what);
      o.betas(std::make_tuple(b[0], b[1]));
    } else if (arg.key == "beta3") {
      std::optional<double> b3 = arg_optional_double(arg, what);
      o.beta3(b3 ? c10::optional<double>(*b3) : c10::nullopt);
    } else if (arg.key == "eps") {
      o.eps(arg_double(arg, what));
    } else if (arg.key == "weight_decay") {
      o.weight_decay(arg_double(arg, what));
    } else if (arg.key == "decouple") {
      o.decouple(arg_bool(arg, what));
    } else if (arg.key == "use_bias_correction") {
      o.use_bias_correction(arg_bool(arg, what));
    } else if (arg.key == "safeguard_warmup") {
      o.safeguard_warmup(arg_bool(arg, what));
    } else if (arg.key == "d0") {
      o.d0(arg_double(arg, what));
    } else if (arg.key == "d_coef") {
      o.d_coef(arg_double(arg, what));
    } else if (arg.key == "growth_rate") {
      o.growth_rate(arg_double(arg, what));
    } else if (arg.key == "slice_p") {
      o.slice_p(arg_int(arg, what));
    } else if (arg.key == "fsdp_in_use") {
      LS_CHECK(!arg_bool(arg, what), "optimizer_args: Prodigy fsdp_in_use=True is for sharded (FSDP) parameters, ",
               "which lorastudio does not use; drop it (data-parallel ranks share gradients, so d agrees)");
    } else if (arg.key == "lr") {
      LS_FAIL("optimizer_args: Prodigy takes its lr from learning_rate (kohya: 1), not from optimizer_args");
    } else {
      fail_unknown_arg(arg, what, kKeys);
    }
  }
  validate(o);
  return o;
}

}  // namespace ls::train
