// kohya optimizer_args -> torch::optim::AdamWOptions.
#include "train/adamw.h"

#include "core/error.h"
#include "train/optimizer_args.h"

namespace ls::train {

torch::optim::AdamWOptions parse_adamw_args(const std::vector<std::string>& optimizer_args, double lr) {
  static const std::vector<std::string> kKeys = {"betas", "eps", "weight_decay", "amsgrad"};
  const std::string what = "AdamW";
  LS_CHECK(lr >= 0, "AdamW: learning rate must be >= 0, got ", lr);
  torch::optim::AdamWOptions o(lr);
  for (const OptimizerArg& arg : split_optimizer_args(optimizer_args)) {
    if (arg.key == "betas") {
      auto b = arg_doubles(arg, 2, what);
      LS_CHECK(b[0] >= 0 && b[0] < 1 && b[1] >= 0 && b[1] < 1,
               "optimizer_args: AdamW betas must both be in [0, 1), got ", arg.value);
      o.betas(std::make_tuple(b[0], b[1]));
    } else if (arg.key == "eps") {
      o.eps(arg_double(arg, what));
      LS_CHECK(o.eps() >= 0, "optimizer_args: AdamW eps must be >= 0, got ", arg.value);
    } else if (arg.key == "weight_decay") {
      o.weight_decay(arg_double(arg, what));
      LS_CHECK(o.weight_decay() >= 0, "optimizer_args: AdamW weight_decay must be >= 0, got ", arg.value);
    } else if (arg.key == "amsgrad") {
      o.amsgrad(arg_bool(arg, what));
    } else {
      fail_unknown_arg(arg, what, kKeys);
    }
  }
  return o;
}

}  // namespace ls::train
