#include "caption/florence2_caption.h"

#include <torch/torch.h>

#include "caption/florence2_processor.h"

namespace ls::caption {

at::Tensor florence2_prompt_ids(const text::BartTokenizer& tokenizer, const std::string& task, int64_t batch) {
  const auto ids = tokenizer.encode(florence2_task_prompt(task), true);
  auto row = torch::tensor(ids, torch::kInt64).unsqueeze(0);
  return row.expand({batch, row.size(1)}).contiguous();
}

std::vector<std::string> florence2_decode(const text::BartTokenizer& tokenizer, const at::Tensor& ids) {
  auto cpu = ids.to(torch::kCPU, torch::kInt64).contiguous();
  std::vector<std::string> texts;
  for (int64_t b = 0; b < cpu.size(0); ++b) {
    const int64_t* row = cpu[b].data_ptr<int64_t>();
    texts.push_back(tokenizer.decode(std::vector<int64_t>(row, row + cpu.size(1)), false));
  }
  return texts;
}

std::vector<std::string> florence2_captions(Florence2Model& model, const at::Tensor& pixels,
                                            const Florence2CaptionOptions& options) {
  torch::InferenceMode inference;
  const at::Tensor param = model.net->parameters().front();  // the model's device and dtype
  auto x = pixels.to(param.device(), param.scalar_type());
  auto prompt = florence2_prompt_ids(model.tokenizer, options.task, x.size(0));
  auto states = model.net->encode(x, prompt);
  auto ids = florence2_generate(*model.net->language_model, states, options.generate);
  std::vector<std::string> captions;
  for (const auto& text : florence2_decode(model.tokenizer, ids)) {
    std::string caption = florence2_clean_text(text);
    if (!options.strip_phrases.empty()) caption = strip_caption_phrases(caption, options.strip_phrases);
    captions.push_back(caption);
  }
  return captions;
}

}  // namespace ls::caption
