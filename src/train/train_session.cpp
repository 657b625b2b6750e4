#include "train/train_session.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <random>

#include "core/error.h"
#include "core/rng.h"
#include "core/runtime.h"
#include "core/strings.h"
#include "data/findings.h"
#include "dist/process_group.h"
#include "io/safetensors.h"
#include "lora/kohya_format.h"
#include "lora/lycoris_args.h"
#include "lora/network_weights.h"
#include "lora/plan.h"
#include "models/checkpoint.h"
#include "models/checkpoint_kind.h"
#include "models/model_source.h"
#include "nn/layers.h"
#include "models/sdxl_conditioner.h"
#include "text/prompt_windows.h"
#include "train/adafactor.h"
#include "train/adamw.h"
#include "train/network_start.h"
#include "train/objective_config.h"
#include "train/optimizer_args.h"
#include "train/param_groups.h"
#include "train/prodigy.h"
#include "train/sample_prompts.h"
#include "train/text_inputs.h"

namespace fs = std::filesystem;

namespace ls::train {
namespace {

data::DataConfig load_data(const TrainConfig& c, data::Findings& findings) {
  if (!c.dataset_config.empty()) {
    // kohya: what the TOML leaves out comes from the training arguments; here the two that are
    // training settings (the bucket and caption keys keep the dataset defaults `dataset check`
    // and `dataset cache` use, so their caches stay valid).
    data::DatasetConfig defaults;
    defaults.batch_size = c.train_batch_size;
    defaults.prior_loss_weight = c.prior_loss_weight;
    data::DataConfig config = data::load_dataset_toml(c.dataset_config, defaults);
    // kohya's --alpha_mask is the fallback of every subset's alpha_mask: on here, it masks them all.
    if (c.alpha_mask)
      for (data::DatasetConfig& d : config.datasets)
        for (data::SubsetConfig& s : d.subsets) s.alpha_mask = true;
    return config;
  }
  data::FolderSource src;
  src.train_dir = c.train_data_dir;
  src.reg_dir = c.reg_data_dir;
  // kohya's folder convention: the dataset and subset keys are the training keys of the same names.
  for (const TrainKeyInfo& k : train_keys()) data::set_folder_default(src, k.name, k.value(c));
  return data::folder_dataset(src, findings);
}

c10::ScalarType save_dtype_of(const std::string& name, c10::ScalarType lora_dtype) {
  if (name.empty()) return lora_dtype;  // kohya: None saves what was trained
  if (name == "float") return c10::kFloat;
  return core::parse_dtype(name);
}

// kohya's prepare_optimizer_params: the text encoders' LoRA first, then the UNet's, each group
// with its own lr when given (else the optimizer's learning_rate).
struct Groups {
  std::vector<torch::optim::OptimizerParamGroup> groups;
  std::vector<double> lrs;
  std::vector<std::string> names;
};

Groups parameter_groups(TrainSession& s) {
  const TrainConfig& c = s.config;
  std::vector<torch::Tensor> tensors;
  const std::vector<LoraParamRef> refs = lora_param_refs(*s.network, tensors);
  LS_CHECK(!refs.empty(), "the LoRA network has no parameters: check network_train_unet_only / ",
           "network_train_text_encoder_only, network_args block_dims / *_lr_weight and network_weights");
  const std::vector<ParamGroupPlan> plans =
      kohya_param_groups(refs, c.text_encoder_lr, c.unet_lr, c.learning_rate, s.network_options.blocks);
  LS_CHECK(!plans.empty(), "every parameter group has learning rate 0 (unet_lr, text_encoder_lr, *_lr_weight): ",
           "nothing would train");
  require_prodigy_group_lrs(plans, c);
  Groups g;
  for (const ParamGroupPlan& plan : plans) {
    std::vector<torch::Tensor> params;
    for (size_t i : plan.params) params.push_back(tensors[i]);
    g.groups.emplace_back(std::move(params));
    g.lrs.push_back(plan.lr);
    g.names.push_back(plan.description);
  }
  return g;
}

void build_optimizer(TrainSession& s) {
  const TrainConfig& c = s.config;
  Groups g = parameter_groups(s);
  for (double& lr : g.lrs) lr *= s.lr_scale;
  s.group_names = g.names;
  const std::string kind = core::ascii_lower(c.optimizer_type);
  bool relative_step = false;
  OwnLr own_lr;  // what the schedule needs to know of an optimizer that makes its own lr
  if (kind == "adafactor") {
    AdafactorOptions defaults = parse_adafactor_args(c.optimizer_args);
    relative_step = defaults.relative_step();
    for (size_t i = 0; i < g.groups.size(); ++i) {
      auto o = std::make_unique<AdafactorOptions>(defaults);
      if (!relative_step) o->lr(g.lrs[i]);
      g.groups[i].set_options(std::move(o));
    }
    if (!relative_step) defaults.lr(c.learning_rate * s.lr_scale);
    auto adafactor = std::make_unique<Adafactor>(std::move(g.groups), defaults);
    own_lr = adafactor->own_lr();
    s.optimizer = std::move(adafactor);
  } else if (kind == "adamw") {
    for (size_t i = 0; i < g.groups.size(); ++i)
      g.groups[i].set_options(std::make_unique<torch::optim::AdamWOptions>(parse_adamw_args(c.optimizer_args, g.lrs[i])));
    s.optimizer = std::make_unique<torch::optim::AdamW>(std::move(g.groups),
                                                        parse_adamw_args(c.optimizer_args, c.learning_rate * s.lr_scale));
  } else if (kind == "prodigy") {
    // kohya passes learning_rate to the constructor and the groups' lrs with them; the schedule
    // then scales every group's lr, which multiplies Prodigy's own d (kohya users set 1).
    const ProdigyOptions defaults = parse_prodigy_args(c.optimizer_args);
    for (size_t i = 0; i < g.groups.size(); ++i)
      g.groups[i].set_options(std::make_unique<ProdigyOptions>(ProdigyOptions(defaults).lr(g.lrs[i])));
    s.optimizer = std::make_unique<Prodigy>(std::move(g.groups), ProdigyOptions(defaults).lr(c.learning_rate * s.lr_scale));
  } else {
    LS_FAIL("optimizer_type ", c.optimizer_type, " is not available; use AdamW, Adafactor or Prodigy");
  }
  LrScheduleOptions o;
  o.kind = effective_lr_schedule(parse_lr_schedule(c.lr_scheduler), relative_step);
  // kohya: a warmup below 1 is a fraction of the training steps.
  o.warmup_steps = c.lr_warmup_steps < 1.0 ? static_cast<int64_t>(c.lr_warmup_steps * static_cast<double>(s.max_steps))
                                           : static_cast<int64_t>(c.lr_warmup_steps);
  o.total_steps = s.max_steps;
  o.num_cycles = c.lr_scheduler_num_cycles;
  o.power = c.lr_scheduler_power;
  validate(o, c.learning_rate);
  s.scheduler = std::make_unique<LrScheduler>(*s.optimizer, o, g.lrs, c.learning_rate * s.lr_scale, std::move(own_lr));
}

// kohya's step arithmetic, with a step of batch_size x world size x accumulation images of one
// bucket (step_split.h): one bucket gives kohya's ceil(ceil(images / batch) / accumulation) exactly;
// with several buckets a step never mixes two, so the count may be a little higher than kohya's.
void count_steps(TrainSession& s) {
  const TrainConfig& c = s.config;
  const int accum = c.gradient_accumulation_steps;
  s.batches_per_step = s.world_size * accum;
  s.updates_per_epoch = data::steps_per_epoch(s.datasets, s.batches_per_step);
  LS_CHECK(s.updates_per_epoch > 0, s.data.source, ": no training images (every subset has 0 repeats or no images)");
  s.batches_per_epoch = s.updates_per_epoch * accum;  // a rank's micro-batches (accelerate's len(dataloader))
  s.max_steps = c.max_train_epochs ? static_cast<int64_t>(*c.max_train_epochs) * s.updates_per_epoch
                                   : static_cast<int64_t>(c.max_train_steps);
  s.num_epochs = static_cast<int>((s.max_steps + s.updates_per_epoch - 1) / s.updates_per_epoch);
  for (const auto& d : s.datasets) {
    s.train_images += d.train_images_with_repeats;
    for (const auto& r : d.images)
      if (r.is_reg) s.reg_images += r.num_repeats;
  }
}

// Builds the latent cache and encodes this rank's share of the missing entries. The posterior
// sample of an entry depends on what was encoded before it in the same process (kohya's order
// dependence too): a cache filled by several ranks holds other, equally valid samples than one
// filled by one process.
data::CacheStats fill_latent_cache(TrainSession& s, const std::string& cache_dir, const data::CacheShard& shard) {
  data::require_latent_cacheable(s.data);
  // The separate VAE when one is given: another VAE, other latents.
  const std::string vae_id = models::model_part_fingerprint(
      {s.config.pretrained_model_name_or_path, s.config.model_config, s.config.vae}, models::ModelPart::kVae);
  s.latent_cache = std::make_unique<data::LatentCache>(cache_dir + "/latents",
                                                       data::vae_cache_id(vae_id, core::dtype_name(s.vae_dtype)));
  auto vae = s.model.vae;
  vae->to(s.device, s.vae_dtype);
  // Each entry's noise is its own (data::latent_noise): the same cache whatever the rank count.
  const data::ImageEncoder encode = [&](const torch::Tensor& pixels, const std::vector<uint64_t>& noise_ids) {
    torch::NoGradGuard no_grad;
    const models::VaeMoments moments = vae->encode(pixels.to(s.device, s.vae_dtype));
    const torch::Tensor latents = models::sample_latent(moments, data::latent_noise(moments.mean, s.seed, noise_ids));
    models::require_finite_latents(latents, s.vae_dtype);
    return latents.cpu();
  };
  return s.latent_cache->fill(s.datasets, encode, s.datasets.front().config.batch_size, s.rank == 0, shard);
}

data::CacheStats fill_text_cache(TrainSession& s, const std::string& cache_dir, const data::CacheShard& shard) {
  data::require_text_cacheable(s.data);
  const std::string te_id = models::model_part_fingerprint(
      {s.config.pretrained_model_name_or_path, s.config.model_config, ""}, models::ModelPart::kTextEncoders);
  s.text_cache = std::make_unique<data::TextCache>(
      cache_dir + "/text", str_cat("sdxl-te sha256:", te_id, " dtype:", core::dtype_name(s.base_dtype),
                                   " windows:", s.n_windows));
  models::SdxlConditioner cond(s.model.te1, s.model.te2);
  const data::TextEncoder encode = [&](const std::vector<std::string>& captions) {
    torch::NoGradGuard no_grad;
    const TextIds ids = tokenize_captions(*s.tokenizer, captions, s.n_windows, s.device);
    const models::SdxlTextEmbedding e = cond.encode(ids.ids_l, ids.ids_g);
    std::vector<data::TensorMap> out;
    for (size_t i = 0; i < captions.size(); ++i)
      out.push_back({{"context", e.context[i].to(torch::kFloat32).cpu()}, {"pooled", e.pooled_g[i].to(torch::kFloat32).cpu()}});
    return out;
  };
  return s.text_cache->fill(data::static_captions(s.datasets), encode, 8, s.rank == 0, shard);
}

// Fills the caches; with several ranks each encodes its share (data::CacheShard) and, after a
// barrier, reads the others' entries from the shared folder.
void fill_caches(TrainSession& s, const std::string& cache_dir, bool latents, bool text) {
  const auto report = [&](const char* what, const std::string& dir, const data::CacheStats& st) {
    s.cache_reports.push_back(str_cat(what, " ", dir, ": ", st.hits, " cached, ", st.encoded, " encoded",
                                      st.others > 0 ? str_cat(" here, ", st.others, " by the other ranks") : ""));
  };
  const data::CacheShard mine{s.rank, s.world_size};
  if (latents) report("latent cache", cache_dir + "/latents", fill_latent_cache(s, cache_dir, mine));
  if (text) report("text-encoder cache", cache_dir + "/text", fill_text_cache(s, cache_dir, mine));
  // Every rank finished its share (a rank that failed fails the barrier): all entries are there.
  if (s.group) s.group->barrier();
}

}  // namespace

void place_cached_parts(TrainSession& s, c10::Device where) {
  // The VAE decodes samples in float32 (SDXL's VAE overflows in fp16), as sample::Pipeline does.
  if (s.latent_cache) s.model.vae->to(where, torch::kFloat);
  if (s.text_cache) {
    s.model.te1->to(where);
    s.model.te2->to(where);
  }
}

lora::LoraNetworkOptions network_options(const TrainConfig& c, std::vector<std::string>* notes) {
  lora::LoraNetworkOptions o;
  o.rank = c.network_dim;
  o.alpha = c.network_alpha;
  o.conv_rank = c.conv_dim;
  o.conv_alpha = c.conv_alpha;
  o.dropout = c.network_dropout;
  o.unet = !c.network_train_text_encoder_only;
  o.text_encoders = !c.network_train_unet_only;
  // One "key=value" per entry (a command-line "a=1 b=2" split), as kohya's list holds them: what
  // network_metadata writes to ss_network_args.
  for (const OptimizerArg& a : split_optimizer_args(c.network_args)) o.network_args.push_back(a.key + "=" + a.value);
  o.lycoris = c.network_module == lora::kLycorisModule;  // LyCORIS: lora/lycoris_args.h
  bool conv_dim_arg = false, conv_alpha_arg = false;
  std::map<std::string, std::string> block_args;  // kohya's block-wise and LoRA+ keys (lora/block_weights.h)
  const std::vector<std::string>& block_keys = lora::block_arg_keys();
  for (const OptimizerArg& a : split_optimizer_args(c.network_args)) {
    const std::string what = "network_args";
    if (a.key == "conv_dim") o.conv_rank = static_cast<int64_t>(arg_double(a, what)), conv_dim_arg = true;
    else if (a.key == "conv_alpha") o.conv_alpha = arg_double(a, what), conv_alpha_arg = true;
    else if (a.key == "rank_dropout") o.rank_dropout = arg_double(a, what);
    else if (a.key == "module_dropout") o.module_dropout = arg_double(a, what);
    else if (a.key == "dropout") o.dropout = arg_double(a, what);
    else if (o.lycoris && lora::apply_lycoris_arg(o, a.key, a.value)) continue;
    else if (std::find(block_keys.begin(), block_keys.end(), a.key) != block_keys.end()) block_args[a.key] = a.value;
    else {
      std::vector<std::string> valid{"conv_dim", "conv_alpha", "rank_dropout", "module_dropout", "dropout"};
      valid.insert(valid.end(), block_keys.begin(), block_keys.end());
      if (o.lycoris) valid.insert(valid.end(), lora::lycoris_arg_keys().begin(), lora::lycoris_arg_keys().end());
      fail_unknown_arg(a, what, valid);
    }
  }
  if (o.lycoris)
    lora::apply_lycoris_conv_defaults(o, conv_dim_arg || c.conv_dim > 0, conv_alpha_arg || c.conv_dim > 0);
  if (o.lycoris) {
    // lycoris.kohya's create_network reads only the LoRA+ ratios of these; kohya hands it the rest too.
    for (auto it = block_args.begin(); it != block_args.end();) {
      if (it->first.rfind("loraplus_", 0) == 0) {
        ++it;
        continue;
      }
      if (notes)
        notes->push_back(str_cat("network_args ", it->first, " is ignored with lycoris.kohya, as LyCORIS' ",
                                 "create_network ignores it (block-wise settings are networks.lora's)"));
      it = block_args.erase(it);
    }
  }
  o.blocks = lora::parse_block_args(block_args, o.rank, o.alpha,
                                    o.conv_rank > 0 ? std::optional<int64_t>(o.conv_rank) : std::nullopt, o.conv_alpha,
                                    notes);
  return o;
}

std::unique_ptr<TrainSession> build_session(const TrainConfig& config, std::vector<std::string>& notes,
                                            dist::ProcessGroup* group) {
  validate(config);
  validate_objective(config, &notes);
  auto s = std::make_unique<TrainSession>();
  s->config = config;
  TrainConfig& c = s->config;
  s->noise = training_schedule(c);
  s->loss = loss_options(c);
  s->group = group;
  if (group) s->rank = group->rank(), s->world_size = group->world_size();
  s->device = core::parse_device(c.device);
  s->base_dtype = c.mixed_precision == "no" ? c10::kFloat : core::parse_dtype(c.mixed_precision);
  s->vae_dtype = s->base_dtype == c10::kBFloat16 ? c10::kBFloat16 : c10::kFloat;
  s->lora_dtype = c.full_bf16 ? c10::kBFloat16 : c.full_fp16 ? c10::kHalf : c10::kFloat;
  s->save_dtype = save_dtype_of(c.save_precision, s->lora_dtype);
  // fp16's five exponent bits lose small gradients: accelerate scales the loss whenever
  // mixed_precision is fp16 (full_fp16 included); bf16 has float32's range and needs none.
  s->scaler = LossScaler(c.mixed_precision == "fp16");
  if (!c.seed) {
    // kohya draws a random seed when none is given; it is written to the effective config.
    std::random_device rd;
    c.seed = (static_cast<uint64_t>(rd()) << 32 | rd()) & 0x7fffffffULL;
    if (group) {  // every rank trains with rank 0's draw
      const torch::Tensor seed = torch::tensor({static_cast<int64_t>(*c.seed)}, torch::TensorOptions(torch::kLong).device(s->device));
      group->broadcast(seed, 0);
      c.seed = static_cast<uint64_t>(seed.item<int64_t>());
    }
  }
  s->seed = *c.seed;
  // The network's settings first: bad network_args or a Prodigy conflict stop before any loading.
  s->network_options = network_options(c, &notes);
  apply_dim_from_weights(c, s->network_options, notes);
  require_prodigy_loraplus(c, s->network_options.blocks);

  data::Findings findings;
  s->data = load_data(c, findings);
  check_loss_masks(c, s->data, notes);
  s->datasets = data::index_datasets(s->data, findings, {false, {}, true});
  data::require_no_errors(findings, s->data.source);
  count_steps(*s);
  if (c.scale_lr) {
    // diffusers' --scale_lr: the rates grow with the images of one optimizer step.
    s->lr_scale = static_cast<double>(c.train_batch_size) * s->batches_per_step;
    notes.push_back(str_cat("scale_lr: learning rates x ", s->lr_scale, " (batch ", c.train_batch_size, " x ",
                            s->world_size, " ranks x accumulation ", c.gradient_accumulation_steps, ")"));
  }

  s->tokenizer = text::ClipTokenizer::from_file(models::require_tokenizer(c.tokenizer, c.pretrained_model_name_or_path, "tokenizer"));
  s->n_windows = text::windows_for_max_token_length(c.max_token_length);

  // The VAE encodes the cache or the live batches; the text encoders are dropped after caching.
  s->model = models::load_sdxl_model({c.pretrained_model_name_or_path, c.model_config, c.vae}, models::Components::all(),
                                      s->device, s->base_dtype);
  s->vae_scale = static_cast<float>(s->model.config.vae.scale_factor);
  for (const std::shared_ptr<torch::nn::Module>& part :
       std::vector<std::shared_ptr<torch::nn::Module>>{s->model.unet.ptr(), s->model.te1.ptr(), s->model.te2.ptr(),
                                                       s->model.vae.ptr()})
    for (auto& p : part->parameters()) p.set_requires_grad(false);
  s->model.vae->eval();

  const std::string cache_dir = data::default_cache_dir(c.dataset_config.empty() ? c.train_data_dir : c.dataset_config);
  const bool latents = c.cache_latents || c.cache_latents_to_disk;
  const bool text = c.cache_text_encoder_outputs || c.cache_text_encoder_outputs_to_disk;
  if (latents && c.cache_latents && !c.cache_latents_to_disk)
    notes.push_back("cache_latents: latents are cached on disk (" + cache_dir + "), as with cache_latents_to_disk");
  if (!latents) s->model.vae->to(s->device, s->vae_dtype);
  fill_caches(*s, cache_dir, latents, text);
  place_cached_parts(*s, c10::kCPU);  // every latent / text embedding now comes from a cache

  if (s->text_cache) s->network_options.text_encoders = false;
  // kohya seeds torch before creating the network: the LoRA init is a function of the seed.
  torch::manual_seed(static_cast<int64_t>(core::derive_seed(s->seed, {core::purpose_id("network_init")}) >> 1));
  s->network = lora::LoraNetwork(s->model, s->network_options);
  s->network->to(s->device, s->lora_dtype);
  // kohya's load_weights after apply_to: the file's tensors replace the fresh ones it has.
  if (!c.network_weights.empty()) load_start_weights(c, *s->network, s->network_options, notes);
  if (group) {  // DDP's start: every rank holds rank 0's initial LoRA
    torch::NoGradGuard no_grad;
    for (auto& p : s->network->parameters()) group->broadcast(p, 0);
  }
  s->network->apply();
  s->network->train();
  for (auto& p : s->network->parameters()) {
    p.set_requires_grad(true);
    s->trainable.push_back(p);
  }
  if (c.gradient_checkpointing) {
    s->model.unet->set_gradient_checkpointing(true);
    if (!s->text_cache) s->model.te1->set_gradient_checkpointing(true);
    if (!s->text_cache) s->model.te2->set_gradient_checkpointing(true);
  }
  build_optimizer(*s);

  if (!c.sample_prompts.empty()) {
    LS_CHECK(fs::exists(c.sample_prompts), c.sample_prompts, ": sample_prompts file not found");
    s->sample_requests = read_sample_prompts(c.sample_prompts, c.sample_sampler, s->seed);
    if (!c.sample_every_n_epochs && !c.sample_every_n_steps && !c.sample_at_first) {
      notes.push_back("sample_prompts: no sample_every_n_epochs, sample_every_n_steps or sample_at_first; no "
                      "sample images will be made");
    }
  }
  return s;
}

TrainingPlan plan_training(const TrainConfig& config, int world_size) {
  validate(config);
  TrainSession s;
  s.config = config;
  s.world_size = world_size;
  data::Findings findings;
  s.data = load_data(config, findings);
  s.datasets = data::index_datasets(s.data, findings, {false, {}, true});
  data::require_no_errors(findings, s.data.source);
  count_steps(s);
  TrainingPlan plan;
  plan.batches_per_epoch = s.batches_per_epoch;
  plan.updates_per_epoch = s.updates_per_epoch;
  plan.max_steps = s.max_steps;
  plan.num_epochs = s.num_epochs;

  lora::LoraNetworkOptions options = network_options(config);
  std::vector<std::string> unused_notes;
  apply_dim_from_weights(config, options, unused_notes);
  if (config.cache_text_encoder_outputs || config.cache_text_encoder_outputs_to_disk) options.text_encoders = false;
  models::SdxlModel model;
  {
    nn::SkipInitGuard skip;  // shapes only: these weights are never read
    model = models::SdxlModel::create(models::model_config({config.pretrained_model_name_or_path, config.model_config, config.vae}),
                                      {true, true, false});
  }
  const lora::LoraPlan lora = lora::plan_network(model, options);
  plan.lora_parameters = lora.total_parameters();
  const c10::ScalarType lora_dtype = config.full_bf16 ? c10::kBFloat16 : config.full_fp16 ? c10::kHalf : c10::kFloat;
  const c10::ScalarType save = save_dtype_of(config.save_precision, lora_dtype);
  const io::Dtype file_dtype = save == c10::kHalf ? io::Dtype::kF16 : save == c10::kBFloat16 ? io::Dtype::kBF16 : io::Dtype::kF32;
  auto metadata = lora::network_metadata(options, config.output_name, 1024, 1024);
  metadata["sshs_model_hash"] = std::string(64, '0');
  metadata["sshs_legacy_hash"] = std::string(8, '0');
  plan.lora_file_bytes = lora.file_size(file_dtype, metadata);
  return plan;
}

}  // namespace ls::train
