// AdamW for kohya's default --optimizer_type AdamW: libtorch's torch::optim::AdamW (same update
// as torch 1.13's torch.optim.AdamW, checked in tests/train/test_adamw.cpp) plus the parsing of
// kohya's optimizer_args into its options (kohya-ss/sd-scripts library/train_util.py get_optimizer).
#pragma once

#include <string>
#include <vector>

#include <torch/optim/adamw.h>

namespace ls::train {

/// optimizer_args for AdamW ("weight_decay=0.1 betas=0.9,0.99 eps=1e-8 amsgrad=False") on top
/// of torch.optim.AdamW's defaults (betas 0.9,0.999, eps 1e-8, weight_decay 0.01), with lr.
torch::optim::AdamWOptions parse_adamw_args(const std::vector<std::string>& optimizer_args, double lr);

}  // namespace ls::train
