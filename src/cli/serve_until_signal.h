// The local servers' (`review`, `captions`) foreground loop: serve until SIGINT or SIGTERM.
#pragma once

#include <functional>

namespace ls::cli {

/// Runs `serve` (which blocks) and calls `stop` from a watcher thread once SIGINT or SIGTERM
/// arrives; restores the previous handlers afterwards.
void serve_until_signal(const std::function<void()>& serve, const std::function<void()>& stop);

}  // namespace ls::cli
