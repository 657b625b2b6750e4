// kohya sample-prompt files; see sample_prompts.h.
#include "train/sample_prompts.h"

#include <filesystem>
#include <sstream>

#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/key_table.h"
#include "core/strings.h"
#include "sample/pipeline.h"

namespace fs = std::filesystem;

namespace ls::train {

namespace {

int64_t round_size(int64_t v) { return std::max<int64_t>(64, v - v % 64); }

/// The request vocabulary's names and aliases plus kohya's options for the same fields; kohya's
/// sampler options take kohya's sampler names.
const core::KeyTable<sample::ImageSettings>& prompt_keys() {
  static const core::KeyTable<sample::ImageSettings> table = [] {
    std::vector<core::Key<sample::ImageSettings>> keys;
    for (const sample::RequestField& f : sample::request_fields()) {
      core::Key<sample::ImageSettings> k = f.key;
      k.aliases.insert(k.aliases.end(), f.kohya.begin(), f.kohya.end());
      keys.push_back(std::move(k));
    }
    core::Key<sample::ImageSettings> kohya_sampler;
    kohya_sampler.name = "sample_sampler";
    kohya_sampler.aliases = {"ss"};
    kohya_sampler.help = "kohya's sampler name (euler_a, k_dpm_2, dpmsolver++, ...)";
    kohya_sampler.set = [](sample::ImageSettings& s, const core::KeyValue& v, const std::string& subject) {
      s.sampler = sampler_from_kohya(v.text, subject);
      s.schedule_type.clear();
    };
    keys.push_back(std::move(kohya_sampler));
    return core::KeyTable<sample::ImageSettings>(std::move(keys));
  }();
  return table;
}

void set_option(sample::ImageRequest& r, const std::string& key, const std::string& value, const std::string& where) {
  const core::Applied applied = prompt_keys().apply(r, key, core::text_value(value), str_cat(where, " (--", key, ")"), nullptr);
  LS_CHECK(applied != core::Applied::kUnknown, where, ": unknown sample prompt option '", key,
           "'; use kohya's --n --w --h --d --l --s --ss or the names `sample` takes (--negative_prompt, --cfg_scale, ...)");
}

sample::ImageRequest defaults(const std::string& sampler) {
  sample::ImageRequest r;
  r.width = r.height = 512;
  r.steps = 30;
  r.cfg_scale = 7.5;
  r.sampler = sampler;
  r.schedule_type.clear();  // the sampler's own default, as kohya's diffusers schedulers have one each
  r.seed = -1;
  return r;
}

std::string value_text(const nlohmann::json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

}  // namespace

std::string sampler_from_kohya(const std::string& name, const std::string& where) {
  static const std::pair<const char*, const char*> table[] = {
      {"ddim", "DDIM"},        {"lms", "LMS"},           {"k_lms", "LMS"},       {"euler", "Euler"},
      {"k_euler", "Euler"},    {"euler_a", "Euler a"},   {"k_euler_a", "Euler a"}, {"heun", "Heun"},
      {"dpm_2", "DPM2"},       {"k_dpm_2", "DPM2"},      {"dpm_2_a", "DPM2 a"},  {"k_dpm_2_a", "DPM2 a"},
      {"dpmsolver", "DPM++ 2M"}, {"dpmsolver++", "DPM++ 2M"}};
  const std::string n = core::ascii_lower(core::trim(name));
  for (const auto& [kohya, ours] : table) {
    if (n == kohya) return ours;
  }
  LS_FAIL(where, ": sample sampler '", name, "' has no k-diffusion counterpart here; use one of ddim, lms, euler, ",
          "euler_a, heun, dpm_2, dpm_2_a, dpmsolver++");
}

std::vector<sample::ImageRequest> read_sample_prompts(const std::string& path, const std::string& default_sampler,
                                                      uint64_t train_seed) {
  return parse_sample_prompts(core::read_file(path), path, default_sampler, train_seed);
}

std::vector<sample::ImageRequest> parse_sample_prompts(std::string_view text, const std::string& path,
                                                       const std::string& default_sampler, uint64_t train_seed) {
  const std::string sampler = sampler_from_kohya(default_sampler, "sample_sampler");
  const std::string ext = core::ascii_lower(fs::path(path).extension().string());
  std::vector<sample::ImageRequest> out;
  std::vector<std::string> places;  // each request's file:line or "prompt N", for its errors
  if (ext == ".json" || ext == ".toml") {
    nlohmann::json list;
    if (ext == ".json") {
      try {
        list = nlohmann::json::parse(text.begin(), text.end());
      } catch (const nlohmann::json::exception& e) {
        LS_FAIL(path, ": not valid JSON (", e.what(), "); fix it or use a .txt prompt file");
      }
    } else {
      try {
        const toml::table t = toml::parse(text, path);
        std::ostringstream s;
        s << toml::json_formatter(t);
        // kohya: [prompt] holds shared keys and [[prompt.subset]] one table per image.
        const nlohmann::json prompt = nlohmann::json::parse(s.str())["prompt"];
        LS_CHECK(prompt.is_object() && prompt.contains("subset") && prompt["subset"].is_array(), path,
                 ": expected a [prompt] table with [[prompt.subset]] entries (kohya's TOML prompt file)");
        for (const auto& subset : prompt["subset"]) {
          nlohmann::json merged = prompt;
          merged.erase("subset");
          if (subset.is_object()) merged.update(subset);
          list.push_back(subset.is_object() ? merged : subset);
        }
      } catch (const toml::parse_error& e) {
        LS_FAIL(path, ":", e.source().begin.line, ": ", e.description());
      }
    }
    LS_CHECK(list.is_array(), path, ": expected a list of prompts (kohya: [{\"prompt\": ..., \"width\": ...}, ...])");
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string where = path + ": prompt " + std::to_string(i + 1);
      LS_CHECK(list[i].is_object(), where, ": expected a table with a prompt");
      sample::ImageRequest r = defaults(sampler);
      for (const auto& [key, value] : list[i].items()) set_option(r, key, value_text(value), where);
      out.push_back(r);
      places.push_back(where);
    }
  } else {
    std::istringstream in{std::string(text)};
    std::string line;
    for (int line_no = 1; std::getline(in, line); ++line_no) {
      line = core::trim(line);
      if (line.empty() || line[0] == '#') continue;
      const std::string where = path + ":" + std::to_string(line_no);
      sample::ImageRequest r = defaults(sampler);
      // kohya splits the line at " --": the first part is the prompt, each other part "<key> <value>".
      size_t pos = line.find(" --");
      r.prompt = core::trim(line.substr(0, pos));
      while (pos != std::string::npos) {
        const size_t next = line.find(" --", pos + 3);
        const std::string part = line.substr(pos + 3, next == std::string::npos ? std::string::npos : next - pos - 3);
        const size_t space = part.find(' ');
        set_option(r, core::trim(part.substr(0, space)), space == std::string::npos ? "" : core::trim(part.substr(space)), where);
        pos = next;
      }
      out.push_back(r);
      places.push_back(where);
    }
  }
  for (size_t i = 0; i < out.size(); ++i) {
    out[i].width = round_size(out[i].width);
    out[i].height = round_size(out[i].height);
    if (out[i].seed < 0) out[i].seed = static_cast<int64_t>((train_seed + i) & 0xffffffffu);
    // What the sampler would refuse fails here, before training, not at the first sample epoch.
    try {
      sample::validate_request(out[i]);
    } catch (const Error& e) {
      LS_FAIL(places[i], ": ", e.what());
    }
  }
  return out;
}

}  // namespace ls::train
