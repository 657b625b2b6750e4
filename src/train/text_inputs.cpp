#include "train/text_inputs.h"

#include "text/prompt_windows.h"

namespace ls::train {
namespace {

torch::Tensor window_ids(const std::vector<std::vector<int64_t>>& bodies, int n_windows, int64_t pad) {
  const int64_t b = static_cast<int64_t>(bodies.size());
  torch::Tensor ids = torch::empty({b, static_cast<int64_t>(n_windows) * text::kWindowTokens}, torch::kLong);
  auto a = ids.accessor<int64_t, 2>();
  for (int64_t i = 0; i < b; ++i) {
    int64_t k = 0;
    for (const text::TokenWindow& w : text::token_windows(bodies[i], n_windows, pad))
      for (int64_t id : w) a[i][k++] = id;
  }
  return ids;
}

}  // namespace

TextIds tokenize_captions(const text::ClipTokenizer& tokenizer, const std::vector<std::string>& captions,
                          int n_windows, c10::Device device) {
  std::vector<std::vector<int64_t>> bodies;
  bodies.reserve(captions.size());
  for (const std::string& c : captions) bodies.push_back(tokenizer.encode(c));
  return {window_ids(bodies, n_windows, tokenizer.end_id()).to(device),
          window_ids(bodies, n_windows, 0).to(device)};
}

SizeTensors size_tensors(const std::vector<data::SizeConditioning>& sizes, c10::Device device) {
  const int64_t b = static_cast<int64_t>(sizes.size());
  torch::Tensor all = torch::empty({3, b, 2}, torch::kFloat32);
  auto a = all.accessor<float, 3>();
  for (int64_t i = 0; i < b; ++i) {
    const data::SizeConditioning& s = sizes[i];
    a[0][i][0] = static_cast<float>(s.original_height), a[0][i][1] = static_cast<float>(s.original_width);
    a[1][i][0] = static_cast<float>(s.crop_top), a[1][i][1] = static_cast<float>(s.crop_left);
    a[2][i][0] = static_cast<float>(s.target_height), a[2][i][1] = static_cast<float>(s.target_width);
  }
  all = all.to(device);  // one copy for the three
  return {all[0], all[1], all[2]};
}

}  // namespace ls::train
