#include "dist/dist_env.h"

#include <cstdlib>

#include "core/error.h"

namespace ls::dist {

namespace {

int de_int(const std::function<const char*(const char*)>& get, const char* name, int fallback, int min_value) {
  const char* text = get(name);
  if (!text || !*text) return fallback;
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  LS_CHECK(end && *end == '\0' && value >= min_value && value <= 1 << 20, "environment: ", name, "='", text,
           "' is not a whole number >= ", min_value);
  return static_cast<int>(value);
}

}  // namespace

DistEnv dist_env_from(const std::function<const char*(const char*)>& get) {
  DistEnv env;
  const bool has_rank = get("RANK") && *get("RANK"), has_world = get("WORLD_SIZE") && *get("WORLD_SIZE");
  LS_CHECK(has_rank == has_world, "environment: RANK and WORLD_SIZE come together (", has_rank ? "RANK" : "WORLD_SIZE",
           " is set, the other is not); set both as torchrun does, or neither for one process");
  env.launched = has_rank;
  env.world_size = de_int(get, "WORLD_SIZE", 1, 1);
  env.rank = de_int(get, "RANK", 0, 0);
  LS_CHECK(env.rank < env.world_size, "environment: RANK=", env.rank, " is not below WORLD_SIZE=", env.world_size);
  env.local_rank = de_int(get, "LOCAL_RANK", env.rank, 0);
  if (const char* addr = get("MASTER_ADDR"); addr && *addr) env.master_addr = addr;
  env.master_port = de_int(get, "MASTER_PORT", env.master_port, 1);
  LS_CHECK(env.master_port <= 65535, "environment: MASTER_PORT=", env.master_port, " is not a TCP port");
  return env;
}

DistEnv dist_env() {
  return dist_env_from([](const char* name) { return std::getenv(name); });
}

}  // namespace ls::dist
