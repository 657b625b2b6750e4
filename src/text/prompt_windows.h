// kohya's long prompts: the body tokens cut into 77-token windows (start + 75 + end/pad), one
// per text-encoder pass, with kohya's fix-ups for pad != end (kohya-ss/sd-scripts
// library/strategy_base.py TokenizeStrategy._get_input_ids, used by strategy_sdxl.py with
// max_length = max_token_length + 2, or 77 when --max_token_length is unset).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace ls::text {

inline constexpr int kWindowTokens = 77;
inline constexpr int kWindowBody = kWindowTokens - 2;  // 75

using TokenWindow = std::array<int64_t, kWindowTokens>;

/// The windows kohya feeds an encoder for `body` (ids without start/end): n_windows in {1,2,3}
/// (--max_token_length unset / 150 / 225); pad = 49407 for TE1 (pad == end), 0 for TE2.
/// Body tokens past n_windows * 75 are dropped. With one window: start + body[:75] + end + pad.
/// With more: the row start + body + end + pad of n*75+2 ids is cut at 1, 76, 151 into
/// start + 75 ids + the row's last id, then, when pad != end, a window whose 75th id is neither
/// end nor pad ends with end, and one whose first id is pad starts with end instead.
std::vector<TokenWindow> token_windows(const std::vector<int64_t>& body, int n_windows, int64_t pad,
                                       int64_t start = 49406, int64_t end = 49407);

/// n_windows for kohya's --max_token_length (0 = unset -> 1, 150 -> 2, 225 -> 3); ls::Error for
/// any other value (kohya's argparse choices are None, 150, 225).
int windows_for_max_token_length(int max_token_length);

}  // namespace ls::text
