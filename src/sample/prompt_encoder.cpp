// A1111's SDXL text conditioning. References (AUTOMATIC1111/stable-diffusion-webui): sd_hijack_clip.py
// (chunks through process_tokens one at a time, torch.hstack of the results, pooled of zs[0]),
// sd_hijack_open_clip.py (TE2 pad id 0), sd_emphasis.py (EmphasisOriginal), sd_models_xl.py
// (empty negative -> force_zero_embeddings), sd_samplers_cfg_denoiser.py (pad_cond with the empty
// prompt's crossattn).
#include "sample/prompt_encoder.h"

#include <torch/torch.h>

#include "core/error.h"

namespace ls::sample {
namespace {

torch::TensorOptions options_of(const models::ClipTextModel& te) {
  return te->text_model->embeddings->token_embedding->weight.options();
}

torch::Tensor window_tensor(const std::vector<text::PromptChunk>& chunks, int64_t pad) {
  std::vector<int64_t> ids;
  ids.reserve(chunks.size() * text::kWindowTokens);
  for (const auto& c : chunks) {
    auto w = text::chunk_window(c, pad);
    ids.insert(ids.end(), w.begin(), w.end());
  }
  return torch::tensor(ids, torch::kLong).view({-1, text::kWindowTokens});  // [N, 77]
}

torch::Tensor weight_tensor(const std::vector<text::PromptChunk>& chunks) {
  std::vector<float> w;  // torch.asarray of Python floats: float32
  w.reserve(chunks.size() * text::kWindowTokens);
  for (const auto& c : chunks)
    for (double x : text::chunk_weights(c)) w.push_back(static_cast<float>(x));
  return torch::tensor(w, torch::kFloat).view({-1, text::kWindowTokens});  // [N, 77]
}

/// [N, 77, C] -> [1, 77 N, C]: chunks side by side, as torch.hstack of the per-chunk outputs.
torch::Tensor join_chunks(const torch::Tensor& z) { return z.reshape({1, -1, z.size(2)}); }

torch::Tensor pad_sequence(const torch::Tensor& x, const torch::Tensor& empty, int64_t repeats) {
  if (!x.defined() || repeats == 0) return x;
  auto fill = empty.to(x.options()).repeat({x.size(0), repeats, 1});  // [B, 77 r, C]
  return torch::cat({x, fill}, 1);
}

void pad_embedding(models::SdxlTextEmbedding& e, const models::SdxlTextEmbedding& empty, int64_t repeats) {
  e.context = pad_sequence(e.context, empty.context, repeats);
  e.hidden_l = pad_sequence(e.hidden_l, empty.hidden_l, repeats);
  e.hidden_g = pad_sequence(e.hidden_g, empty.hidden_g, repeats);
}

}  // namespace

torch::Tensor apply_emphasis(const torch::Tensor& z, const torch::Tensor& weights) {
  LS_CHECK(z.dim() == 3 && weights.dim() == 2 && weights.size(0) == z.size(0) && weights.size(1) == z.size(1),
           "emphasis: weights ", weights.sizes(), " do not match the encoder output ", z.sizes());
  auto compute = torch::promote_types(z.scalar_type(), torch::kFloat);
  auto original_mean = z.mean({1, 2}, /*keepdim=*/true).to(compute);                    // [N, 1, 1]
  auto weighted = z.to(compute) * weights.to(z.device(), torch::kFloat).to(compute).unsqueeze(-1);  // [N, 77, C]
  auto new_mean = weighted.mean({1, 2}, /*keepdim=*/true);                                // [N, 1, 1]
  return (weighted * (original_mean / new_mean)).to(z.scalar_type());
}

models::SdxlTextEmbedding encode_chunks(models::SdxlConditioner& conditioner,
                                        const std::vector<text::PromptChunk>& chunks) {
  LS_CHECK(!chunks.empty(), "prompt encoder: a prompt has at least one chunk");
  LS_CHECK(conditioner.te1->config().max_positions == text::kWindowTokens,
           "prompt encoder: the text encoders must take ", text::kWindowTokens, " positions, got ",
           conditioner.te1->config().max_positions);
  torch::NoGradGuard no_grad;
  // Chunks ride in the batch dimension: each is encoded on its own, as A1111's loop over chunks.
  auto e = conditioner.encode(window_tensor(chunks, text::ClipTokenizer::kEnd), window_tensor(chunks, 0));
  auto weights = weight_tensor(chunks);
  models::SdxlTextEmbedding out;
  out.hidden_l = join_chunks(apply_emphasis(e.hidden_l, weights));  // [1, 77 N, 768]
  out.hidden_g = join_chunks(apply_emphasis(e.hidden_g, weights));  // [1, 77 N, 1280]
  out.pooled_g = e.pooled_g.slice(0, 0, 1);                          // [1, 1280] chunk 0, no emphasis
  out.context = torch::cat({out.hidden_l, out.hidden_g.to(out.hidden_l.options())}, -1);  // [1, 77 N, 2048]
  return out;
}

models::SdxlTextEmbedding encode_prompt(models::SdxlConditioner& conditioner, const text::ClipTokenizer& tokenizer,
                                        const std::string& prompt) {
  return encode_chunks(conditioner, text::chunk_prompt(tokenizer, prompt));
}

models::SdxlTextEmbedding encode_negative_prompt(models::SdxlConditioner& conditioner,
                                                 const text::ClipTokenizer& tokenizer, const std::string& negative) {
  if (!negative.empty()) return encode_prompt(conditioner, tokenizer, negative);
  const auto& c1 = conditioner.te1->config();
  const auto& c2 = conditioner.te2->config();
  const int64_t n = text::kWindowTokens;
  models::SdxlTextEmbedding e;
  e.hidden_l = torch::zeros({1, n, c1.width}, options_of(conditioner.te1));
  e.hidden_g = torch::zeros({1, n, c2.width}, options_of(conditioner.te2));
  e.pooled_g = torch::zeros({1, c2.projection_dim}, options_of(conditioner.te2));
  e.context = torch::zeros({1, n, c1.width + c2.width}, options_of(conditioner.te1));
  return e;
}

void pad_to_same_length(models::SdxlTextEmbedding& a, models::SdxlTextEmbedding& b,
                        const models::SdxlTextEmbedding& empty) {
  const int64_t unit = empty.context.size(1);
  const int64_t diff = a.context.size(1) - b.context.size(1);
  LS_CHECK(unit > 0 && diff % unit == 0, "prompt padding: sequence lengths ", a.context.size(1), " and ",
           b.context.size(1), " differ by a part of the ", unit, "-token empty prompt");
  if (diff > 0) pad_embedding(b, empty, diff / unit);
  if (diff < 0) pad_embedding(a, empty, -diff / unit);
}

CfgTextEmbeddings encode_prompt_pair(models::SdxlConditioner& conditioner, const text::ClipTokenizer& tokenizer,
                                     const std::string& positive, const std::string& negative) {
  CfgTextEmbeddings out{encode_prompt(conditioner, tokenizer, positive),
                        encode_negative_prompt(conditioner, tokenizer, negative)};
  if (out.cond.context.size(1) != out.uncond.context.size(1))
    pad_to_same_length(out.cond, out.uncond, encode_prompt(conditioner, tokenizer, ""));
  return out;
}

}  // namespace ls::sample
