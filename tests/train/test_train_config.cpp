// The training config: kohya-style TOML (top level and [sections]), every key type, errors naming
// file:line / key / expected type / nearest key, ignored and unsupported kohya keys, path resolution,
// command-line overrides, the effective-config round trip and validate()'s rules.
#include <algorithm>
#include <fstream>
#include <functional>
#include <limits>
#include <set>

#include <gtest/gtest.h>

#include "core/error.h"
#include "support/support.h"
#include "train/train_config.h"
#include "train/train_config_kohya.h"

namespace {

namespace fs = std::filesystem;
using ls::train::TrainConfig;
using ls::train::TrainKeyInfo;
using ls::train::TrainKeyType;
using ls::train::resume_changes;
using ls::train::train_keys;

TrainConfig parse(const std::string& text, std::vector<std::string>* notes = nullptr) {
  return ls::train::parse_train_config(text, "t.toml", "", notes);
}

using ls::test::error_of;

std::string parse_error(const std::string& text) {
  return error_of([&] { parse(text); });
}

TEST(TrainConfigToml, TopLevelKeys) {
  const TrainConfig c = parse(
      "pretrained_model_name_or_path = \"/m/sdxl.safetensors\"\n"
      "network_dim = 16\n"
      "learning_rate = 1e-4\n"
      "cache_latents = true\n");
  EXPECT_EQ(c.pretrained_model_name_or_path, "/m/sdxl.safetensors");
  EXPECT_EQ(c.network_dim, 16);
  EXPECT_EQ(c.learning_rate, 1e-4);
  EXPECT_TRUE(c.cache_latents);
  EXPECT_EQ(c.network_alpha, 1.0);  // absent keys keep kohya's defaults
  EXPECT_EQ(c.max_train_steps, 1600);
  EXPECT_FALSE(c.seed.has_value());
}

TEST(TrainConfigToml, SectionsAreFlattenedOneLevel) {
  const TrainConfig c = parse(
      "output_name = \"top\"\n"
      "[model]\n"
      "pretrained_model_name_or_path = \"/m.safetensors\"\n"
      "[training]\n"
      "network_dim = 32\n"
      "optimizer_args = [\"weight_decay=0.1\"]\n");
  EXPECT_EQ(c.output_name, "top");
  EXPECT_EQ(c.pretrained_model_name_or_path, "/m.safetensors");
  EXPECT_EQ(c.network_dim, 32);
  EXPECT_EQ(c.optimizer_args, std::vector<std::string>{"weight_decay=0.1"});

  const std::string deep = parse_error("[training]\nnetwork_dim = 4\n[training.more]\nseed = 1\n");
  EXPECT_NE(deep.find("t.toml:"), std::string::npos) << deep;
  EXPECT_NE(deep.find("two tables deep"), std::string::npos) << deep;

  const std::string twice = parse_error("[a]\nnetwork_dim = 4\n[b]\nnetwork_dim = 8\n");
  EXPECT_NE(twice.find("t.toml:4: 'network_dim' is set twice (first on line 2)"), std::string::npos) << twice;
}

TEST(TrainConfigToml, EveryType) {
  const TrainConfig c = parse(
      "device = \"cuda:1\"\n"                              // kString
      "output_dir = \"out/loras\"\n"                        // kPath (no base dir: as written)
      "min_bucket_reso = 320\n"                             // kInt
      "max_train_epochs = 7\n"                              // kOptionalInt
      "network_alpha = 8\n"                                 // kDouble from an integer
      "noise_offset = 0.0357\n"                             // kDouble
      "unet_lr = 3e-4\n"                                    // kOptionalDouble
      "text_encoder_lr = [5e-5, 5e-5]\n"                    // kohya's per-encoder list, equal values
      "flip_aug = true\n"                                   // kBool
      "network_args = [\"conv_dim=4\", \"conv_alpha=2\"]\n"  // kStrings
      "optimizer_args = \"scale_parameter=False relative_step=False\"\n"  // kohya's one-string form
      "resolution = \"1024,768\"\n"                         // kResolution
      "seed = 42\n");                                      // kSeed
  EXPECT_EQ(c.device, "cuda:1");
  EXPECT_EQ(c.output_dir, "out/loras");
  EXPECT_EQ(c.min_bucket_reso, 320);
  EXPECT_EQ(c.max_train_epochs, std::optional<int>(7));
  EXPECT_EQ(c.network_alpha, 8.0);
  EXPECT_EQ(c.noise_offset, 0.0357);
  EXPECT_EQ(c.unet_lr, std::optional<double>(3e-4));
  EXPECT_EQ(c.text_encoder_lr, std::optional<double>(5e-5));
  EXPECT_TRUE(c.flip_aug);
  EXPECT_EQ(c.network_args, (std::vector<std::string>{"conv_dim=4", "conv_alpha=2"}));
  EXPECT_EQ(c.optimizer_args, std::vector<std::string>{"scale_parameter=False relative_step=False"});
  EXPECT_EQ(c.resolution, (std::array<int, 2>{1024, 768}));
  EXPECT_EQ(c.seed, std::optional<uint64_t>(42));

  EXPECT_EQ(parse("resolution = 896\n").resolution, (std::array<int, 2>{896, 896}));
  EXPECT_EQ(parse("resolution = \"1152\"\n").resolution, (std::array<int, 2>{1152, 1152}));
  EXPECT_EQ(parse("resolution = [832, 1216]\n").resolution, (std::array<int, 2>{832, 1216}));
  // Seeds past int64 are written as a decimal string; both forms read back.
  EXPECT_EQ(parse("seed = \"18446744073709551615\"\n").seed, std::optional<uint64_t>(UINT64_MAX));
  EXPECT_EQ(parse("text_encoder_lr = 2e-5\n").text_encoder_lr, std::optional<double>(2e-5));
  // Empty string = unset (kohya GUIs write None as ""), for optionals and plain keys alike.
  const TrainConfig empty = parse("max_train_epochs = \"\"\noptimizer_type = \"\"\nnetwork_args = []\n");
  EXPECT_FALSE(empty.max_train_epochs.has_value());
  EXPECT_EQ(empty.optimizer_type, "AdamW");
  EXPECT_TRUE(empty.network_args.empty());
  // kohya turns sample_every_n_* <= 0 off.
  EXPECT_FALSE(parse("sample_every_n_epochs = 0\n").sample_every_n_epochs.has_value());
  EXPECT_EQ(parse("sample_every_n_steps = 250\n").sample_every_n_steps, std::optional<int>(250));
}

TEST(TrainConfigToml, TypeErrorsNameFileLineKeyAndType) {
  const std::string e1 = parse_error("\n\nnetwork_dim = \"16\"\n");
  EXPECT_NE(e1.find("t.toml:3: 'network_dim' must be an integer"), std::string::npos) << e1;
  const std::string e2 = parse_error("cache_latents = \"yes\"\n");
  EXPECT_NE(e2.find("t.toml:1: 'cache_latents' must be true or false"), std::string::npos) << e2;
  const std::string e3 = parse_error("learning_rate = true\n");
  EXPECT_NE(e3.find("'learning_rate' must be a number"), std::string::npos) << e3;
  const std::string e4 = parse_error("seed = -3\n");
  EXPECT_NE(e4.find("'seed' must be a non-negative integer"), std::string::npos) << e4;
  const std::string e5 = parse_error("resolution = [1024, 768, 3]\n");
  EXPECT_NE(e5.find("'resolution' must be an integer, \"W,H\" or [W, H]"), std::string::npos) << e5;
  const std::string e6 = parse_error("network_args = [\"a=1\", 2]\n");
  EXPECT_NE(e6.find("'network_args' must be an array of strings"), std::string::npos) << e6;
  const std::string e7 = parse_error("text_encoder_lr = [1e-5, 2e-5]\n");
  EXPECT_NE(e7.find("different values per text encoder"), std::string::npos) << e7;
  const std::string e8 = parse_error("network_dim = 3000000000\n");
  EXPECT_NE(e8.find("'network_dim' must be a 32-bit integer"), std::string::npos) << e8;
  const std::string e9 = parse_error("output_name = \"a\"\nnetwork_dim = \n");
  EXPECT_NE(e9.find("t.toml:2: TOML syntax error"), std::string::npos) << e9;
}

TEST(TrainConfigToml, UnknownKeyNamesLineAndNearestKey) {
  const std::string e = parse_error("network_dim = 4\n[training]\nnetwrok_alpha = 2\n");
  EXPECT_NE(e.find("t.toml:3: unknown training key 'netwrok_alpha' (did you mean 'network_alpha'?)"),
            std::string::npos)
      << e;
  const std::string far = parse_error("completely_unrelated = 1\n");
  EXPECT_NE(far.find("unknown training key 'completely_unrelated'"), std::string::npos) << far;
  EXPECT_EQ(far.find("did you mean"), std::string::npos) << far;
  const std::string dataset = parse_error("[[datasets]]\nbatch_size = 1\n");
  EXPECT_NE(dataset.find("pass it as dataset_config"), std::string::npos) << dataset;
}

TEST(TrainConfigKohya, IgnoredKeysAddNotes) {
  std::vector<std::string> notes;
  const TrainConfig c = parse("xformers = true\nnetwork_dim = 8\n[logging]\nlogging_dir = \"logs\"\n", &notes);
  EXPECT_EQ(c.network_dim, 8);
  ASSERT_EQ(notes.size(), 2u);
  EXPECT_EQ(notes[0], "xformers: ignored (attention is SDPA or plain math, chosen by lorastudio)");
  EXPECT_EQ(notes[1].rfind("logging_dir: ignored (", 0), 0u) << notes[1];
  EXPECT_NO_THROW(parse("sdpa = true\n"));  // no notes vector: still accepted

  // The brief's list is all there, and every reason is a phrase.
  std::set<std::string> ignored;
  for (const auto& [name, reason] : ls::train::ignored_kohya_keys()) {
    ignored.insert(name);
    EXPECT_FALSE(reason.empty()) << name;
  }
  for (const char* k : {"xformers", "sdpa", "mem_eff_attn", "max_data_loader_n_workers",
                        "persistent_data_loader_workers", "lowram", "highvram", "no_half_vae", "logging_dir",
                        "log_with", "log_prefix", "training_comment", "console_log_level"})
    EXPECT_EQ(ignored.count(k), 1u) << k;
}

TEST(TrainConfigKohya, UnsupportedKeysOnlyAtTheirOffValue) {
  EXPECT_NO_THROW(parse("v2 = false\nfp8_base = false\nscale_weight_norms = 0.0\n"
                        "base_weights = \"\"\ntoken_warmup_min = 1\n"));
  const std::string e = parse_error("\nv2 = true\n");
  EXPECT_NE(e.find("t.toml:2: kohya key v2 = true is not supported by lorastudio yet; remove it"), std::string::npos)
      << e;
  EXPECT_NE(parse_error("scale_weight_norms = 1.0\n").find("scale_weight_norms = 1.0 is not supported"),
            std::string::npos);
  EXPECT_NE(parse_error("token_warmup_step = 10\n").find("token_warmup_step"), std::string::npos);
  EXPECT_NE(parse_error("base_weights = \"w.safetensors\"\n").find("base_weights"), std::string::npos);
  EXPECT_NE(parse_error("fp8_base_unet = true\n").find("fp8_base_unet"), std::string::npos);
  // In TOML "false" the string is truthy for kohya: refused.
  EXPECT_NE(parse_error("fp8_base = \"false\"\n").find("fp8_base"), std::string::npos);

  TrainConfig c;
  EXPECT_NO_THROW(ls::train::set_train_key(c, "v2", "False"));
  EXPECT_NO_THROW(ls::train::set_train_key(c, "scale_weight_norms", "0"));
  EXPECT_NO_THROW(ls::train::set_train_key(c, "base_weights", "None"));
  const std::string cli = error_of([&] { ls::train::set_train_key(c, "scale_weight_norms", "1.0"); });
  EXPECT_NE(cli.find("--scale_weight_norms: kohya key scale_weight_norms = '1.0' is not supported"), std::string::npos)
      << cli;

  // No key is in two tables.
  for (const auto& info : ls::train::train_keys()) {
    EXPECT_EQ(ls::train::ignored_kohya_reason(info.name), nullptr) << info.name;
    EXPECT_EQ(ls::train::find_unsupported_kohya_key(info.name), nullptr) << info.name;
  }
  for (const auto& [name, reason] : ls::train::ignored_kohya_keys())
    EXPECT_EQ(ls::train::find_unsupported_kohya_key(name), nullptr) << name;
}

TEST(TrainConfigToml, RelativePathsResolveAgainstTheFile) {
  ls::test::TempDir dir;
  fs::create_directories(dir / "cfg");
  const fs::path file = dir / "cfg" / "train.toml";
  std::ofstream(file) << "pretrained_model_name_or_path = \"../models/sdxl.safetensors\"\n"
                         "dataset_config = \"data.toml\"\n"
                         "output_dir = \"/abs/out\"\n"
                         "sample_prompts = \"\"\n"
                         "device = \"cuda\"\n"
                         "output_name = \"sub/name\"\n";
  const TrainConfig c = ls::train::load_train_config(file.string());
  const fs::path base = fs::absolute(file).parent_path();
  EXPECT_EQ(c.pretrained_model_name_or_path, (base / "../models/sdxl.safetensors").lexically_normal().string());
  EXPECT_EQ(c.dataset_config, (base / "data.toml").lexically_normal().string());
  EXPECT_EQ(c.output_dir, "/abs/out");
  EXPECT_EQ(c.sample_prompts, "");        // empty = unset, not the folder
  EXPECT_EQ(c.device, "cuda");            // not a path key
  EXPECT_EQ(c.output_name, "sub/name");   // not a path key

  const std::string missing = error_of([&] { ls::train::load_train_config((dir / "nope.toml").string()); });
  EXPECT_NE(missing.find("nope.toml: training config not found"), std::string::npos) << missing;
}

TEST(TrainConfigCli, OverridesBeatTheToml) {
  TrainConfig c = parse("network_dim = 8\nflip_aug = true\noutput_dir = \"/o\"\nmax_train_epochs = 3\n");
  ls::train::set_train_key(c, "network_dim", "32");
  ls::train::set_train_key(c, "flip_aug", "FALSE");
  ls::train::set_train_key(c, "output_dir", "rel/out");  // stays as typed
  ls::train::set_train_key(c, "max_train_epochs", "");   // empty = unset
  EXPECT_EQ(c.network_dim, 32);
  EXPECT_FALSE(c.flip_aug);
  EXPECT_EQ(c.output_dir, "rel/out");
  EXPECT_FALSE(c.max_train_epochs.has_value());
}

TEST(TrainConfigCli, ValuesAndErrors) {
  TrainConfig c;
  using ls::train::set_train_key;
  set_train_key(c, "cache_latents", "True");
  EXPECT_TRUE(c.cache_latents);
  set_train_key(c, "cache_latents", "0");
  EXPECT_FALSE(c.cache_latents);
  set_train_key(c, "gradient_checkpointing", "1");
  EXPECT_TRUE(c.gradient_checkpointing);
  set_train_key(c, "resolution", "1024,768");
  EXPECT_EQ(c.resolution, (std::array<int, 2>{1024, 768}));
  set_train_key(c, "seed", "18446744073709551615");
  EXPECT_EQ(c.seed, std::optional<uint64_t>(UINT64_MAX));
  set_train_key(c, "optimizer_args", "weight_decay=0.01 betas=0.9,0.999");
  EXPECT_EQ(c.optimizer_args, std::vector<std::string>{"weight_decay=0.01 betas=0.9,0.999"});
  set_train_key(c, "lr_warmup_steps", "0.05");
  EXPECT_EQ(c.lr_warmup_steps, 0.05);
  set_train_key(c, "text_encoder_lr", "1e-5");
  EXPECT_EQ(c.text_encoder_lr, std::optional<double>(1e-5));
  set_train_key(c, "mixed_precision", "bf16");
  EXPECT_EQ(c.mixed_precision, "bf16");
  set_train_key(c, "mixed_precision", "");
  EXPECT_EQ(c.mixed_precision, "no");  // empty = the default

  auto err = [&](const std::string& k, const std::string& v) { return error_of([&] { set_train_key(c, k, v); }); };
  EXPECT_EQ(err("cache_latents", "yes"), "--cache_latents must be true, false, 1 or 0, got 'yes'");
  EXPECT_EQ(err("network_dim", "8x"), "--network_dim must be an integer, got '8x'");
  EXPECT_EQ(err("learning_rate", "fast"), "--learning_rate must be a finite number, got 'fast'");
  EXPECT_NE(err("seed", "-1").find("--seed must be a non-negative integer"), std::string::npos);
  EXPECT_NE(err("resolution", "1024,x").find("--resolution must be an integer, \"W,H\""), std::string::npos);
  EXPECT_EQ(err("netwrok_dim", "4"), "unknown option --netwrok_dim (did you mean --network_dim?)");

  std::vector<std::string> notes;
  set_train_key(c, "xformers", "true", &notes);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0].rfind("xformers: ignored (", 0), 0u);
}

// Every key set away from its default, with strings that need escaping and doubles that need
// all 17 digits.
TrainConfig everything_set() {
  TrainConfig c;
  c.pretrained_model_name_or_path = "/m/sdxl \"base\".safetensors";
  c.model_config = "/m/arch.json";
  c.vae = "/m/sdxl_vae.safetensors";
  c.tokenizer = "/v/bpe_simple_vocab_16e6.txt.gz";
  c.device = "cuda:1";
  c.dataset_config = "data\\set.toml";
  c.train_data_dir = "/d/train";
  c.reg_data_dir = "/d/reg";
  c.resolution = {896, 1152};
  c.enable_bucket = true;
  c.min_bucket_reso = 320;
  c.max_bucket_reso = 2048;
  c.bucket_reso_steps = 32;
  c.bucket_no_upscale = true;
  c.caption_extension = ".caption";
  c.shuffle_caption = true;
  c.keep_tokens = 2;
  c.caption_dropout_rate = 0.1;
  c.caption_tag_dropout_rate = 1.0 / 3.0;
  c.caption_dropout_every_n_epochs = 5;
  c.flip_aug = true;
  c.random_crop = true;
  c.train_batch_size = 4;
  c.network_module = "networks.lycoris";
  c.network_dim = 64;
  c.network_alpha = 32.5;
  c.network_dropout = 0.125;
  c.conv_dim = 8;
  c.conv_alpha = 4;
  c.network_args = {"rank_dropout=0.1", "module_dropout=0.2\ttab"};
  c.network_train_unet_only = true;
  c.network_train_text_encoder_only = true;
  c.network_weights = "/w/start.safetensors";
  c.dim_from_weights = true;
  c.optimizer_type = "Adafactor";
  c.optimizer_args = {"scale_parameter=False", "eps=(1e-30, 1e-3)"};
  c.learning_rate = 1e-300;
  c.unet_lr = 2.0000000000000002e-4;
  c.text_encoder_lr = 0.1 + 0.2;
  c.lr_scheduler = "cosine_with_restarts";
  c.lr_warmup_steps = 0.05;
  c.lr_scheduler_num_cycles = 3;
  c.lr_scheduler_power = 2.5;
  c.max_grad_norm = 0;
  c.max_train_epochs = 10;
  c.max_train_steps = 123456;
  c.gradient_accumulation_steps = 2;
  c.seed = std::numeric_limits<uint64_t>::max() - 1;  // past int64: written as a string
  c.scale_lr = true;
  c.ddp_timeout = 2.5;
  c.ddp_check_every_n_steps = 10;
  c.min_snr_gamma = 5;
  c.noise_offset = 0.0357;
  c.prior_loss_weight = 0.75;
  c.min_timestep = 100;
  c.max_timestep = 900;
  c.max_token_length = 225;
  c.loss_type = "huber";
  c.huber_schedule = "exponential";
  c.huber_c = 0.25;
  c.huber_scale = 1.5;
  c.v_parameterization = true;
  c.zero_terminal_snr = true;
  c.scale_v_pred_loss_like_noise_pred = true;
  c.v_pred_like_loss = 0.2;
  c.debiased_estimation_loss = true;
  c.noise_offset_random_strength = true;
  c.adaptive_noise_scale = -0.01;
  c.multires_noise_iterations = 6;
  c.multires_noise_discount = 0.4;
  c.ip_noise_gamma = 0.1;
  c.ip_noise_gamma_random_strength = true;
  c.masked_loss = true;
  c.alpha_mask = true;
  c.gradient_checkpointing = true;
  c.mixed_precision = "bf16";
  c.full_bf16 = true;
  c.full_fp16 = true;
  c.save_precision = "fp16";
  c.cache_latents = true;
  c.cache_latents_to_disk = true;
  c.cache_text_encoder_outputs = true;
  c.cache_text_encoder_outputs_to_disk = true;
  c.output_dir = "/o/\xe3\x83\xad\xe3\x83\xa9";  // UTF-8 passes through
  c.output_name = "my\nlora";
  c.save_model_as = "ckpt";
  c.save_every_n_epochs = 2;
  c.save_every_n_steps = 500;
  c.save_state = true;
  c.save_state_on_train_end = true;
  c.resume = "/o/state";
  c.sample_prompts = "/p/prompts.txt";
  c.sample_every_n_epochs = 1;
  c.sample_every_n_steps = 100;
  c.sample_sampler = "euler_a";
  c.sample_at_first = true;
  return c;
}

TEST(TrainConfigWrite, RoundTripEveryField) {
  const TrainConfig a = everything_set();
  const std::string text = ls::train::train_config_toml(a);
  const TrainConfig b = ls::train::parse_train_config(text, "effective.toml", "");
  size_t compared = 0;
#define LS_SAME(f) do { ++compared; EXPECT_EQ(b.f, a.f) << #f; } while (0)
  LS_SAME(pretrained_model_name_or_path); LS_SAME(vae); LS_SAME(model_config); LS_SAME(tokenizer); LS_SAME(device);
  LS_SAME(dataset_config); LS_SAME(train_data_dir); LS_SAME(reg_data_dir); LS_SAME(resolution);
  LS_SAME(enable_bucket); LS_SAME(min_bucket_reso); LS_SAME(max_bucket_reso); LS_SAME(bucket_reso_steps);
  LS_SAME(bucket_no_upscale); LS_SAME(caption_extension); LS_SAME(shuffle_caption); LS_SAME(keep_tokens);
  LS_SAME(caption_dropout_rate); LS_SAME(caption_tag_dropout_rate); LS_SAME(caption_dropout_every_n_epochs);
  LS_SAME(flip_aug); LS_SAME(random_crop); LS_SAME(train_batch_size);
  LS_SAME(network_module); LS_SAME(network_dim); LS_SAME(network_alpha); LS_SAME(network_dropout);
  LS_SAME(conv_dim); LS_SAME(conv_alpha); LS_SAME(network_args); LS_SAME(network_train_unet_only);
  LS_SAME(network_train_text_encoder_only); LS_SAME(network_weights); LS_SAME(dim_from_weights);
  LS_SAME(optimizer_type); LS_SAME(optimizer_args); LS_SAME(learning_rate); LS_SAME(unet_lr);
  LS_SAME(text_encoder_lr); LS_SAME(lr_scheduler); LS_SAME(lr_warmup_steps); LS_SAME(lr_scheduler_num_cycles);
  LS_SAME(lr_scheduler_power); LS_SAME(max_grad_norm);
  LS_SAME(max_train_epochs); LS_SAME(max_train_steps); LS_SAME(gradient_accumulation_steps); LS_SAME(seed);
  LS_SAME(scale_lr); LS_SAME(ddp_timeout); LS_SAME(ddp_check_every_n_steps);
  LS_SAME(min_snr_gamma); LS_SAME(noise_offset); LS_SAME(prior_loss_weight); LS_SAME(min_timestep);
  LS_SAME(max_timestep); LS_SAME(max_token_length);
  LS_SAME(loss_type); LS_SAME(huber_schedule); LS_SAME(huber_c); LS_SAME(huber_scale); LS_SAME(v_parameterization);
  LS_SAME(zero_terminal_snr); LS_SAME(scale_v_pred_loss_like_noise_pred); LS_SAME(v_pred_like_loss);
  LS_SAME(debiased_estimation_loss); LS_SAME(noise_offset_random_strength); LS_SAME(adaptive_noise_scale);
  LS_SAME(multires_noise_iterations); LS_SAME(multires_noise_discount); LS_SAME(ip_noise_gamma);
  LS_SAME(ip_noise_gamma_random_strength); LS_SAME(masked_loss); LS_SAME(alpha_mask);
  LS_SAME(gradient_checkpointing); LS_SAME(mixed_precision); LS_SAME(full_bf16); LS_SAME(full_fp16);
  LS_SAME(save_precision); LS_SAME(cache_latents); LS_SAME(cache_latents_to_disk);
  LS_SAME(cache_text_encoder_outputs); LS_SAME(cache_text_encoder_outputs_to_disk);
  LS_SAME(output_dir); LS_SAME(output_name); LS_SAME(save_model_as); LS_SAME(save_every_n_epochs);
  LS_SAME(save_every_n_steps); LS_SAME(save_state); LS_SAME(save_state_on_train_end); LS_SAME(resume);
  LS_SAME(sample_prompts); LS_SAME(sample_every_n_epochs); LS_SAME(sample_every_n_steps); LS_SAME(sample_sampler);
  LS_SAME(sample_at_first);
#undef LS_SAME
  // One comparison per key: a field added to TrainConfig needs a key and a line here.
  EXPECT_EQ(ls::train::train_keys().size(), compared);
  EXPECT_EQ(ls::train::train_config_toml(b), text);
}

TEST(TrainConfigWrite, EveryKeyInTableOrderOptionalsOmitted) {
  const std::string all = ls::train::train_config_toml(everything_set());
  const std::string defaults = ls::train::train_config_toml(TrainConfig{});
  size_t pos = 0;
  std::set<std::string> names;
  for (const auto& info : ls::train::train_keys()) {
    EXPECT_TRUE(names.insert(info.name).second) << "duplicate key " << info.name;
    EXPECT_FALSE(info.help.empty()) << info.name;
    const std::string line = "\n" + info.name + " = ";
    const size_t at = all.find(line, pos);
    ASSERT_NE(at, std::string::npos) << info.name << " missing or out of order";
    pos = at + 1;
    // Each key's line differs from the default config's, so the round trip covered every key.
    const size_t eol = all.find('\n', at + 1);
    const std::string written = all.substr(at, eol - at + 1);
    EXPECT_EQ(defaults.find(written), std::string::npos) << info.name << " is at its default";
  }
  for (const char* optional : {"seed =", "unet_lr =", "text_encoder_lr =", "max_train_epochs =",
                               "save_every_n_epochs =", "sample_every_n_steps ="})
    EXPECT_EQ(defaults.find(std::string("\n") + optional), std::string::npos) << optional;
  EXPECT_NE(defaults.find("\nlearning_rate = 2e-06\n"), std::string::npos) << defaults;
  EXPECT_NE(defaults.find("\nnetwork_alpha = 1.0\n"), std::string::npos);
  EXPECT_NE(defaults.find("\nresolution = \"1024,1024\"\n"), std::string::npos);
  EXPECT_NE(all.find("\nseed = \"18446744073709551614\"\n"), std::string::npos);
  EXPECT_NE(all.find("\noutput_name = \"my\\nlora\"\n"), std::string::npos);
  EXPECT_NE(all.find("\ntext_encoder_lr = 0.30000000000000004\n"), std::string::npos);

  using TT = TrainKeyType;
  const std::pair<const char*, TT> types[] = {{"output_dir", TT::kPath},     {"device", TT::kString},
                                              {"network_dim", TT::kInt},     {"seed", TT::kSeed},
                                              {"unet_lr", TT::kOptionalDouble}, {"resolution", TT::kResolution},
                                              {"network_args", TT::kStrings}, {"save_every_n_steps", TT::kOptionalInt},
                                              {"flip_aug", TT::kBool},       {"learning_rate", TT::kDouble}};
  for (const auto& [name, type] : types) {
    auto it = std::find_if(ls::train::train_keys().begin(), ls::train::train_keys().end(),
                           [&](const auto& info) { return info.name == name; });
    ASSERT_NE(it, ls::train::train_keys().end()) << name;
    EXPECT_EQ(it->type, type) << name;
  }
}

TrainConfig valid_config() {
  TrainConfig c;
  c.pretrained_model_name_or_path = "/m.safetensors";
  c.output_dir = "/out";
  c.train_data_dir = "/data";
  return c;
}

TEST(TrainConfigValidate, EachRuleNamesItsKey) {
  EXPECT_NO_THROW(ls::train::validate(valid_config()));
  {
    TrainConfig ok = valid_config();  // edges kohya allows
    ok.min_timestep = ok.max_timestep = 500;
    ok.optimizer_type = "adafactor";
    ok.mixed_precision = "fp16";
    ok.full_fp16 = true;
    ok.max_token_length = 150;
    ok.cache_text_encoder_outputs = true;
    ok.network_train_unet_only = true;
    EXPECT_NO_THROW(ls::train::validate(ok));
  }
  using Edit = std::function<void(TrainConfig&)>;
  const std::vector<std::pair<Edit, std::string>> cases = {
      {[](TrainConfig& c) { c.pretrained_model_name_or_path.clear(); }, "pretrained_model_name_or_path"},
      {[](TrainConfig& c) { c.output_dir.clear(); }, "output_dir"},
      {[](TrainConfig& c) { c.train_data_dir.clear(); }, "dataset_config"},
      {[](TrainConfig& c) { c.dataset_config = "/d.toml"; }, "dataset_config and train_data_dir"},
      {[](TrainConfig& c) { c.train_data_dir.clear(), c.dataset_config = "/d.toml", c.reg_data_dir = "/r"; },
       "reg_data_dir"},
      {[](TrainConfig& c) { c.network_train_unet_only = c.network_train_text_encoder_only = true; },
       "network_train_unet_only and network_train_text_encoder_only"},
      {[](TrainConfig& c) { c.dim_from_weights = true; }, "dim_from_weights needs network_weights"},
      {[](TrainConfig& c) { c.min_timestep = -1; }, "min_timestep"},
      {[](TrainConfig& c) { c.max_timestep = 1001; }, "max_timestep"},
      {[](TrainConfig& c) { c.min_timestep = 600, c.max_timestep = 500; }, "min_timestep (600)"},
      {[](TrainConfig& c) { c.mixed_precision = "fp32"; }, "mixed_precision"},
      {[](TrainConfig& c) { c.full_bf16 = true; }, "full_bf16"},
      {[](TrainConfig& c) { c.mixed_precision = "bf16", c.full_fp16 = true; }, "full_fp16"},
      {[](TrainConfig& c) { c.save_precision = "fp8"; }, "save_precision"},
      {[](TrainConfig& c) { c.optimizer_type = "Lion"; }, "optimizer_type 'Lion' is not supported; lorastudio has AdamW, Adafactor and Prodigy"},
      {[](TrainConfig& c) { c.lr_scheduler = "cosine_annealing"; }, "lr_scheduler"},
      {[](TrainConfig& c) { c.lr_warmup_steps = -1; }, "lr_warmup_steps"},
      {[](TrainConfig& c) { c.train_batch_size = 0; }, "train_batch_size"},
      {[](TrainConfig& c) { c.gradient_accumulation_steps = 0; }, "gradient_accumulation_steps"},
      {[](TrainConfig& c) { c.max_train_steps = 0; }, "max_train_steps"},
      {[](TrainConfig& c) { c.network_dim = 0; }, "network_dim"},
      {[](TrainConfig& c) { c.max_train_epochs = 0; }, "max_train_epochs"},
      {[](TrainConfig& c) { c.save_every_n_epochs = 0; }, "save_every_n_epochs"},
      {[](TrainConfig& c) { c.save_every_n_steps = -5; }, "save_every_n_steps"},
      {[](TrainConfig& c) { c.caption_dropout_rate = 1.5; }, "caption_dropout_rate"},
      {[](TrainConfig& c) { c.network_module = "networks.dylora"; }, "network_module"},
      {[](TrainConfig& c) { c.save_model_as = "ckpt"; }, "save_model_as"},
      {[](TrainConfig& c) { c.max_token_length = 100; }, "max_token_length"},
      {[](TrainConfig& c) { c.cache_text_encoder_outputs = true; }, "cache_text_encoder_outputs needs network_train_unet_only"},
      {[](TrainConfig& c) { c.cache_text_encoder_outputs_to_disk = true; }, "network_train_unet_only"},
      {[](TrainConfig& c) { c.network_train_unet_only = c.cache_text_encoder_outputs = c.shuffle_caption = true; },
       "shuffle_caption"},
      {[](TrainConfig& c) { c.cache_latents = c.random_crop = true; }, "random_crop"},
  };
  for (const auto& [edit, expected] : cases) {
    TrainConfig c = valid_config();
    edit(c);
    const std::string e = error_of([&] { ls::train::validate(c); });
    EXPECT_NE(e.find(expected), std::string::npos) << "expected '" << expected << "' in: '" << e << "'";
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  }
}

// A resume may move outputs, cadence, files and the device, not what the run computes: only the
// latter are listed, as "key old -> new" in TOML text, unset optionals as "(unset)".
TEST(TrainConfigResume, ChangesListOnlyKeysThatAlterTraining) {
  TrainConfig saved;
  saved.learning_rate = 1e-3;
  saved.seed = 7;
  TrainConfig now = saved;
  EXPECT_TRUE(resume_changes(saved, now).empty());
  now.output_dir = "/elsewhere";
  now.output_name = "renamed";
  now.device = "cuda:1";
  now.save_every_n_steps = 50;
  now.sample_every_n_epochs = 1;
  now.gradient_checkpointing = !saved.gradient_checkpointing;
  now.ddp_timeout = 5;
  now.ddp_check_every_n_steps = 1;
  EXPECT_TRUE(resume_changes(saved, now).empty());
  now.learning_rate = 2e-3;
  now.unet_lr = 1e-4;
  now.seed = 8;
  EXPECT_EQ(resume_changes(saved, now),
            (std::vector<std::string>{"learning_rate 0.001 -> 0.002", "unet_lr (unset) -> 0.0001", "seed 7 -> 8"}));
  int free_keys = 0;
  for (const TrainKeyInfo& k : train_keys()) free_keys += k.resume_may_change;
  // resume, outputs (6), cadence (7), input files (6), device, checkpointing, ddp_timeout and
  // ddp_check_every_n_steps (waiting and checking change nothing computed)
  EXPECT_EQ(free_keys, 24);
}

}  // namespace
