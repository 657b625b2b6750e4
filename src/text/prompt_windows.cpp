// kohya's 77-token windows for long prompts (kohya-ss/sd-scripts library/strategy_base.py
// _get_input_ids; the tokenizer call before it pads/truncates like transformers' CLIPTokenizer
// with padding="max_length", truncation=True).
#include "text/prompt_windows.h"

#include <algorithm>

#include "core/error.h"

namespace ls::text {

std::vector<TokenWindow> token_windows(const std::vector<int64_t>& body, int n_windows, int64_t pad, int64_t start,
                                       int64_t end) {
  LS_CHECK(n_windows >= 1 && n_windows <= 3, "token windows: n_windows must be 1, 2 or 3 (75, 150 or 225 tokens), got ",
           n_windows);
  // The tokenizer's row: start + body truncated to n*75 + end, padded to n*75 + 2.
  const size_t row_size = static_cast<size_t>(n_windows) * kWindowBody + 2;
  std::vector<int64_t> row;
  row.reserve(row_size);
  row.push_back(start);
  row.insert(row.end(), body.begin(), body.begin() + static_cast<std::ptrdiff_t>(std::min(body.size(), row_size - 2)));
  row.push_back(end);
  row.resize(row_size, pad);

  std::vector<TokenWindow> windows(static_cast<size_t>(n_windows));
  for (int w = 0; w < n_windows; ++w) {
    TokenWindow& win = windows[static_cast<size_t>(w)];
    auto first = row.begin() + 1 + static_cast<std::ptrdiff_t>(w) * kWindowBody;
    win[0] = row.front();
    std::copy(first, first + kWindowBody, win.begin() + 1);
    win[kWindowTokens - 1] = row.back();
    if (n_windows == 1) continue;  // kohya only rewrites windows when the prompt is split
    // Both rules are no-ops when pad == end; kohya applies them only for pad != end.
    if (win[kWindowTokens - 2] != end && win[kWindowTokens - 2] != pad) win[kWindowTokens - 1] = end;
    if (win[1] == pad) win[1] = end;
  }
  return windows;
}

int windows_for_max_token_length(int max_token_length) {
  switch (max_token_length) {
    case 0: return 1;
    case 150: return 2;
    case 225: return 3;
    default:
      LS_FAIL("max_token_length must be 150 or 225 (or unset for 75), got ", max_token_length);
  }
}

}  // namespace ls::text
