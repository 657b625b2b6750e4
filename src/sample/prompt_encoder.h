// SDXL prompt conditioning for sampling, as AUTOMATIC1111/stable-diffusion-webui makes it:
// chunks of 77 encoded one by one and joined along the sequence (modules/sd_hijack_clip.py
// forward/process_tokens), emphasis "Original" per chunk and per encoder (modules/sd_emphasis.py),
// pooled from the first chunk, zeros for an empty negative prompt (modules/sd_models_xl.py
// force_zero_embeddings) and the pad_cond_uncond padding (modules/sd_samplers_cfg_denoiser.py).
#pragma once

#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "models/sdxl_conditioner.h"
#include "text/clip_tokenizer.h"
#include "text/prompt_attention.h"

namespace ls::sample {

/// EmphasisOriginal.after_transformers on z [N, 77, C] with weights [N, 77] (N chunks of one
/// prompt): each chunk becomes z*w scaled by mean(z)/mean(z*w), means over that chunk. Computed in
/// float32 or wider (A1111's multipliers are a float32 tensor), returned in z's dtype.
torch::Tensor apply_emphasis(const torch::Tensor& z, const torch::Tensor& weights);

/// Encodes chunks (text::chunk_prompt) for one prompt: TE1 ids padded with 49407, TE2 ids with 0
/// after the first end token, both encoders' penultimate states with emphasis applied to each,
/// joined as [1, 77 N, C]; pooled_g from chunk 0. No gradients; on the encoders' devices/dtypes.
models::SdxlTextEmbedding encode_chunks(models::SdxlConditioner& conditioner,
                                        const std::vector<text::PromptChunk>& chunks);

/// encode_chunks(chunk_prompt(prompt)): A1111's conditioning for a positive prompt.
models::SdxlTextEmbedding encode_prompt(models::SdxlConditioner& conditioner, const text::ClipTokenizer& tokenizer,
                                        const std::string& prompt);

/// A1111's SDXL negative prompt: "" gives zeros ([1, 77, C] and a zero pooled vector, the size
/// embeddings are not affected); anything else is encode_prompt.
models::SdxlTextEmbedding encode_negative_prompt(models::SdxlConditioner& conditioner,
                                                 const text::ClipTokenizer& tokenizer, const std::string& negative);

/// A1111's pad_cond_uncond: the shorter of a and b gets copies of `empty` (the encoded "" prompt,
/// [1, 77, C]) appended along the sequence until both have the same length. Context and hidden
/// states are padded alike; pooled is untouched.
void pad_to_same_length(models::SdxlTextEmbedding& a, models::SdxlTextEmbedding& b,
                        const models::SdxlTextEmbedding& empty);

struct CfgTextEmbeddings {
  models::SdxlTextEmbedding cond;    // positive prompt
  models::SdxlTextEmbedding uncond;  // negative prompt
};

/// The positive and negative prompts for classifier-free guidance, padded to one sequence length
/// so they can share a UNet batch (the empty prompt is encoded only when padding is needed).
CfgTextEmbeddings encode_prompt_pair(models::SdxlConditioner& conditioner, const text::ClipTokenizer& tokenizer,
                                     const std::string& positive, const std::string& negative);

}  // namespace ls::sample
