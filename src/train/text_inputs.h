// A batch's conditioning inputs as the SDXL conditioner takes them: captions -> token ids for
// both encoders (kohya's 75-token windows; TE1 padded with end, TE2 with 0), and the size
// conditioning of each sample as [B, 2] tensors.
#pragma once

#include <string>
#include <vector>

#include <torch/torch.h>

#include "data/loader.h"
#include "text/clip_tokenizer.h"

namespace ls::train {

struct TextIds {
  torch::Tensor ids_l;  // [B, 77 n] int64 for TE1
  torch::Tensor ids_g;  // [B, 77 n] int64 for TE2
};
TextIds tokenize_captions(const text::ClipTokenizer& tokenizer, const std::vector<std::string>& captions,
                          int n_windows, c10::Device device);

struct SizeTensors {
  torch::Tensor original_hw, crop_tl, target_hw;  // [B, 2] float32 each
};
SizeTensors size_tensors(const std::vector<data::SizeConditioning>& sizes, c10::Device device);

}  // namespace ls::train
