#include "train/train_state.h"

#include <unistd.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "lora/kohya_format.h"
#include "lora/network.h"

namespace fs = std::filesystem;

namespace ls::train {
namespace {

// 2: world_size, and batch_in_epoch counts optimizer steps (1 counted micro-batches, the same
// without gradient accumulation).
constexpr int kStateFormat = 2;
constexpr const char* kWeightsFile = "lora.safetensors";
constexpr const char* kOptimizerFile = "optimizer.pt";
constexpr const char* kInfoFile = "state.json";

}  // namespace

namespace {

// Streams the optimizer's archive through an AtomicFile, so a full disk is reported like every
// other write (one line, the path, errno) instead of torch's PytorchStreamWriter message.
void write_optimizer_file(const fs::path& file, const torch::optim::Optimizer& optimizer) {
  torch::serialize::OutputArchive archive;
  optimizer.save(archive);
  core::AtomicFile out(file);
  std::string failure;  // the first write error, reported once torch is done
  try {
    // Every count is taken as written: on a short one torch's writer throws again from its
    // destructor (std::terminate, the temp folder left behind), so the rest is dropped instead.
    archive.save_to([&](const void* data, size_t size) -> size_t {
      if (failure.empty()) {
        try {
          out.write(data, size);
        } catch (const Error& e) {
          failure = e.what();
        }
      }
      return size;
    });
  } catch (const c10::Error& e) {
    LS_CHECK(!failure.empty(), file.string(), ": cannot write the optimizer state (", e.what_without_backtrace(), ")");
  }
  LS_CHECK(failure.empty(), failure);
  out.commit();
}

void write_train_state_files(const fs::path& tmp, const lora::LoraNetworkImpl& network,
                             const torch::optim::Optimizer& optimizer, const TrainStateInfo& info) {
  std::error_code ec;
  fs::create_directories(tmp, ec);
  if (ec) LS_FAIL(core::write_error_message(tmp, "cannot create the state folder", ec.value()));
  // Weights in their own dtype: a resumed run continues from the exact values.
  io::save_safetensors(tmp / kWeightsFile, lora::lora_state(network));
  write_optimizer_file(tmp / kOptimizerFile, optimizer);
  nlohmann::json j{{"format", kStateFormat},
                   {"global_step", info.position.global_step},
                   {"epoch", info.position.epoch},
                   {"batch_in_epoch", info.position.batch_in_epoch},
                   {"seed", info.seed},
                   {"epoch_loss_sum", info.epoch_loss_sum},
                   {"epoch_loss_count", info.epoch_loss_count},
                   {"loss_scaler", {{"scale", info.loss_scaler.scale},
                                    {"growth_tracker", info.loss_scaler.growth_tracker},
                                    {"skipped_steps", info.loss_scaler.skipped_steps}}},
                   {"world_size", info.world_size},
                   {"config", info.config_toml}};
  if (info.stamp) {  // optional fields: format 2 states without them stay readable
    j["session_id"] = info.stamp->session_id;
    j["training_started_at"] = info.stamp->started_at;
  }
  core::write_file_atomic(tmp / kInfoFile, j.dump(2) + "\n");
}

}  // namespace

void save_train_state(const std::string& dir, const lora::LoraNetworkImpl& network,
                      const torch::optim::Optimizer& optimizer, const TrainStateInfo& info) {
  const fs::path final_dir(dir);
  const fs::path tmp = final_dir.string() + ".tmp-" + std::to_string(::getpid());
  std::error_code ec;
  fs::remove_all(tmp, ec);
  try {
    write_train_state_files(tmp, network, optimizer, info);
  } catch (const Error& e) {
    fs::remove_all(tmp, ec);  // a full disk leaves no partial state behind, only the previous one
    LS_FAIL(final_dir.string(), ": cannot save the training state: ", e.what(),
            fs::exists(final_dir, ec) ? "; the previous state there is unchanged" : "");
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  // Swap in: the old state stays complete until the new one has its name.
  const fs::path old = final_dir.string() + ".old-" + std::to_string(::getpid());
  fs::remove_all(old, ec);
  const bool had_old = fs::exists(final_dir, ec);
  if (had_old) fs::rename(final_dir, old, ec);
  if (!ec) fs::rename(tmp, final_dir, ec);
  if (ec) {
    const int err = ec.value();
    if (had_old && !fs::exists(final_dir)) fs::rename(old, final_dir, ec);  // put the previous state back
    fs::remove_all(tmp, ec);
    LS_FAIL(core::write_error_message(final_dir, "cannot move the new state into place", err),
            "; the previous state is unchanged");
  }
  fs::remove_all(old, ec);
}

TrainStateInfo read_train_state_info(const std::string& dir) {
  const fs::path info_path = fs::path(dir) / kInfoFile;
  LS_CHECK(fs::is_directory(dir), dir, ": no such state folder; pass a folder written with save_state (e.g. ",
           "<output_dir>/<output_name>-000002-state)");
  LS_CHECK(fs::exists(info_path), dir, ": not a lorastudio training state (", kInfoFile, " missing)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(core::read_file(info_path));
  } catch (const nlohmann::json::exception& e) {
    LS_FAIL(info_path.string(), ": unreadable training state (", e.what(), ")");
  }
  const int format = j.value("format", 0);
  LS_CHECK(format == 1 || format == kStateFormat, info_path.string(), ": state format ", format,
           " is not one this lorastudio reads (1 or ", kStateFormat, ")");
  TrainStateInfo info;
  info.format = format;
  info.world_size = j.value("world_size", 1);
  info.position.global_step = j.at("global_step").get<int64_t>();
  info.position.epoch = j.at("epoch").get<int>();
  info.position.batch_in_epoch = j.at("batch_in_epoch").get<int64_t>();
  info.seed = j.at("seed").get<uint64_t>();
  info.epoch_loss_sum = j.value("epoch_loss_sum", 0.0);
  info.epoch_loss_count = j.value("epoch_loss_count", int64_t{0});
  info.config_toml = j.value("config", std::string());
  if (j.contains("session_id") && j.contains("training_started_at"))
    info.stamp = RunStamp{j.at("session_id").get<uint64_t>(), j.at("training_started_at").get<double>()};
  if (j.contains("loss_scaler")) {  // states written before fp16 loss scaling have none
    const nlohmann::json& scaler = j.at("loss_scaler");
    info.loss_scaler.scale = scaler.at("scale").get<double>();
    info.loss_scaler.growth_tracker = scaler.at("growth_tracker").get<int64_t>();
    info.loss_scaler.skipped_steps = scaler.at("skipped_steps").get<int64_t>();
  }
  return info;
}

TrainStateInfo load_train_state(const std::string& dir, lora::LoraNetworkImpl& network,
                                torch::optim::Optimizer& optimizer) {
  TrainStateInfo info = read_train_state_info(dir);
  const fs::path weights = fs::path(dir) / kWeightsFile;
  io::SafetensorsReader reader(weights);
  {
    torch::NoGradGuard no_grad;
    for (auto& [name, tensor] : lora::lora_state(network)) {
      const io::TensorInfo* t = reader.find(name);
      LS_CHECK(t != nullptr, weights.string(), ": ", name,
               " missing; the state was written for another network (network_dim, conv_dim, unet/te choice)");
      const at::Tensor saved = reader.load(name);
      LS_CHECK(saved.sizes() == tensor.sizes(), weights.string(), ": ", name, " has shape ", saved.sizes(),
               ", the network has ", tensor.sizes(), "; resume with the network settings of the saved run");
      tensor.copy_(saved);  // lora_state's tensors share storage with the parameters
    }
  }
  torch::serialize::InputArchive archive;
  archive.load_from((fs::path(dir) / kOptimizerFile).string());
  optimizer.load(archive);
  return info;
}

}  // namespace ls::train
