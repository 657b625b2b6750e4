# The reference half of bench_florence2: transformers' native Florence2ForConditionalGeneration
# (random weights, fp32, CPU) captioning one 768 x 768 image with the same prompt ids and the
# same generation settings (3 beams, no-repeat 3-grams, 64 new tokens), on the same torch.
# Prints "seconds S tokens T": the median seconds per caption over REPEATS runs after a warm-up.
# Usage: python bench_florence2_transformers.py CONFIG_JSON REPEATS PROMPT_IDS   (needs transformers)
import statistics
import sys
import time

import torch
from transformers import Florence2Config, Florence2ForConditionalGeneration

config_path, repeats, prompt = sys.argv[1], int(sys.argv[2]), [int(t) for t in sys.argv[3].split(",")]
torch.set_num_threads(torch.get_num_threads())
torch.manual_seed(0)
config = Florence2Config.from_json_file(config_path)
model = Florence2ForConditionalGeneration(config).eval()
pixels = torch.randn(1, 3, 768, 768)
with torch.inference_mode():
    features = model.get_image_features(pixels)  # 5.23: an output object, the tokens in pooler_output
    n_image = getattr(features, "pooler_output", features).shape[1]
input_ids = torch.tensor([[config.image_token_id] * n_image + prompt])
times, tokens = [], 0
with torch.inference_mode():
    for r in range(repeats + 1):
        start = time.perf_counter()
        out = model.generate(input_ids=input_ids, pixel_values=pixels, max_new_tokens=64, num_beams=3,
                             no_repeat_ngram_size=3, early_stopping=True, do_sample=False,
                             forced_bos_token_id=0, forced_eos_token_id=2, length_penalty=1.0)
        elapsed = time.perf_counter() - start
        tokens = out.shape[1] - 1
        if r > 0:
            times.append(elapsed)
print(f"seconds {statistics.median(times):.4f} tokens {tokens}", flush=True)
