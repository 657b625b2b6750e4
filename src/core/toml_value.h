// A TOML node as a key value (core/key_table.h): the bridge between toml++ and the key tables, so
// that every config file reads its values the same way.
#pragma once

#include <toml++/toml.h>

#include "core/key_table.h"

namespace ls::core {

/// The node's kind and value; `shown` is the value as TOML would write it, for messages.
KeyValue toml_value(const toml::node& node);

/// "<file>:<line>" of a node.
std::string toml_place(const std::string& file, const toml::node& node);

}  // namespace ls::core
