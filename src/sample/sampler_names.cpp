// A1111's sampler and schedule-type names (stable-diffusion-webui 1.10 modules/sd_samplers_kdiffusion.py
// samplers_k_diffusion, sd_samplers_timesteps.py, sd_schedulers.py, sd_samplers.get_sampler_and_scheduler)
// resolved to a SamplerSpec, the sigmas A1111 builds for it (KDiffusionSampler.get_sigmas) and the
// dispatch to the sampler functions.
#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "core/error.h"
#include "core/nearest_name.h"
#include "core/strings.h"
#include "sample/samplers.h"
#include "sample/sigmas.h"

namespace ls::sample {

// Named, not anonymous: unity builds put several sample/ sources into one translation unit.
namespace sampler_spec_detail {

struct SamplerEntry {
  const char* label;
  SamplerKind kind;
  ScheduleKind automatic;  // A1111's options['scheduler'] (none = the model's discrete schedule)
  bool discard_penultimate;
  bool heun_solver;
  std::vector<const char*> aliases;  // A1111 aliases and k-diffusion function names
};

// A1111 1.10's list (plus k-diffusion's names); DPM fast / adaptive, Restart, PLMS, UniPC, LCM are not here.
const std::vector<SamplerEntry>& sampler_table() {
  using K = SamplerKind;
  using S = ScheduleKind;
  static const std::vector<SamplerEntry> table = {
      {"DPM++ 2M", K::kDpmpp2m, S::kKarras, false, false, {"k_dpmpp_2m", "dpmpp_2m"}},
      {"DPM++ SDE", K::kDpmppSde, S::kKarras, false, false, {"k_dpmpp_sde", "dpmpp_sde"}},
      {"DPM++ 2M SDE", K::kDpmpp2mSde, S::kExponential, false, false, {"k_dpmpp_2m_sde", "dpmpp_2m_sde"}},
      {"DPM++ 2M SDE Heun", K::kDpmpp2mSde, S::kExponential, false, true,
       {"k_dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun"}},
      {"DPM++ 2S a", K::kDpmpp2sAncestral, S::kKarras, false, false, {"k_dpmpp_2s_a", "dpmpp_2s_ancestral"}},
      {"DPM++ 3M SDE", K::kDpmpp3mSde, S::kExponential, true, false, {"k_dpmpp_3m_sde", "dpmpp_3m_sde"}},
      {"Euler a", K::kEulerAncestral, S::kUniform, false, false,
       {"k_euler_a", "k_euler_ancestral", "euler_ancestral", "euler_a"}},
      {"Euler", K::kEuler, S::kUniform, false, false, {"k_euler", "euler"}},
      {"LMS", K::kLms, S::kUniform, false, false, {"k_lms", "lms"}},
      {"Heun", K::kHeun, S::kUniform, false, false, {"k_heun", "heun"}},
      {"DPM2", K::kDpm2, S::kKarras, true, false, {"k_dpm_2", "dpm_2"}},
      {"DPM2 a", K::kDpm2Ancestral, S::kKarras, true, false, {"k_dpm_2_a", "dpm_2_ancestral", "dpm_2_a"}},
      {"DDIM", K::kDdim, S::kAutomatic, false, false, {"ddim"}},
  };
  return table;
}

struct ScheduleEntry {
  const char* label;
  ScheduleKind kind;
  std::vector<const char*> aliases;  // A1111 scheduler names and aliases; "_ka" / "_exp" are 1.8 alias suffixes
};

const std::vector<ScheduleEntry>& schedule_table() {
  using S = ScheduleKind;
  static const std::vector<ScheduleEntry> table = {
      {"Automatic", S::kAutomatic, {"automatic"}},
      {"Uniform", S::kUniform, {"uniform"}},
      {"Karras", S::kKarras, {"karras", "_ka"}},
      {"Exponential", S::kExponential, {"exponential", "_exp"}},
      {"SGM Uniform", S::kSgmUniform, {"sgm_uniform", "SGMUniform"}},
      {"Simple", S::kSimple, {"simple"}},
      {"Normal", S::kNormal, {"normal"}},
      {"DDIM", S::kDdim, {"ddim"}},
  };
  return table;
}

const SamplerEntry* find_sampler(const std::string& key) {
  for (const auto& e : sampler_table()) {
    if (core::ascii_lower(e.label) == key) return &e;
    for (const char* alias : e.aliases) {
      if (core::ascii_lower(alias) == key) return &e;
    }
  }
  return nullptr;
}

const ScheduleEntry* find_schedule(const std::string& key) {
  for (const auto& e : schedule_table()) {
    if (core::ascii_lower(e.label) == key) return &e;
    for (const char* alias : e.aliases) {
      if (alias[0] != '_' && core::ascii_lower(alias) == key) return &e;
    }
  }
  return nullptr;
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + ("\"" + n + "\"");
  return out;
}

[[noreturn]] void unknown_sampler(const std::string& name) {
  std::vector<std::string> candidates;
  for (const auto& e : sampler_table()) {
    candidates.push_back(core::ascii_lower(e.label));
    for (const char* alias : e.aliases) candidates.push_back(alias);
  }
  const auto near = core::nearest_name(core::ascii_lower(name), candidates);
  LS_FAIL("sampler \"", name, "\" is unknown", near.empty() ? "" : " (did you mean \"" + near + "\"?)",
          "; valid samplers: ", joined(sampler_names()),
          " (A1111 names, optionally with a schedule suffix such as \" Karras\", or k-diffusion names)");
}

// A1111 get_sampler_and_scheduler: a schedule label, name or alias at the end of the sampler name
// (after a space, or "_ka" / "_exp") is split off.
const SamplerEntry* split_schedule_suffix(const std::string& key, const ScheduleEntry** schedule) {
  for (const auto& s : schedule_table()) {
    std::vector<std::string> suffixes = {" " + core::ascii_lower(s.label)};
    for (const char* alias : s.aliases) {
      suffixes.push_back(alias[0] == '_' ? core::ascii_lower(alias) : " " + core::ascii_lower(alias));
    }
    for (const auto& suffix : suffixes) {
      if (key.size() <= suffix.size() || key.compare(key.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
      if (const auto* sampler = find_sampler(core::trim(key.substr(0, key.size() - suffix.size())))) {
        *schedule = &s;
        return sampler;
      }
    }
  }
  return nullptr;
}

}  // namespace sampler_spec_detail

std::vector<std::string> sampler_names() {
  std::vector<std::string> names;
  for (const auto& e : sampler_spec_detail::sampler_table()) names.push_back(e.label);
  return names;
}

std::vector<std::string> schedule_names() {
  std::vector<std::string> names;
  for (const auto& e : sampler_spec_detail::schedule_table()) names.push_back(e.label);
  return names;
}

SamplerSpec parse_sampler(const std::string& name, const std::string& schedule) {
  using namespace sampler_spec_detail;  // block scope: does not leak into the unity batch
  const std::string key = core::ascii_lower(core::trim(name));
  const ScheduleEntry* from_name = nullptr;
  const SamplerEntry* sampler = find_sampler(key);
  if (sampler == nullptr) sampler = split_schedule_suffix(key, &from_name);
  if (sampler == nullptr) unknown_sampler(name);

  const ScheduleEntry* given = nullptr;
  const std::string schedule_key = core::ascii_lower(core::trim(schedule));
  if (!schedule_key.empty()) {
    given = find_schedule(schedule_key);
    LS_CHECK(given != nullptr, "schedule type \"", schedule, "\" is unknown or unsupported; valid schedule types: ",
             joined(schedule_names()));
  }
  if (from_name != nullptr && given != nullptr && given->kind != ScheduleKind::kAutomatic) {
    LS_CHECK(given->kind == from_name->kind, "sampler \"", name, "\" names the ", from_name->label,
             " schedule but schedule type \"", schedule, "\" was given; give one of them");
  }
  ScheduleKind kind = ScheduleKind::kAutomatic;
  if (from_name != nullptr) kind = from_name->kind;
  else if (given != nullptr) kind = given->kind;

  SamplerSpec spec;
  spec.kind = sampler->kind;
  spec.label = sampler->label;
  spec.discard_penultimate_sigma = sampler->discard_penultimate;
  spec.heun_solver = sampler->heun_solver;
  if (spec.kind == SamplerKind::kDdim) {
    // A1111's timestep samplers take no schedule type: DDIM spaces its own timesteps.
    LS_CHECK(kind == ScheduleKind::kAutomatic, "sampler \"", name, "\" uses its own timestep spacing; ",
             "leave the schedule type empty or \"Automatic\" (got \"", from_name ? from_name->label : schedule, "\")");
    spec.schedule = ScheduleKind::kAutomatic;
    spec.eta = 0.0;  // A1111 eta_ddim
    return spec;
  }
  spec.schedule = kind == ScheduleKind::kAutomatic ? sampler->automatic : kind;
  for (const auto& e : schedule_table()) {
    if (e.kind == spec.schedule) spec.schedule_label = e.label;
  }
  spec.eta = 1.0;  // A1111 eta_ancestral, used by the ancestral and SDE samplers
  return spec;
}

bool uses_noise(const SamplerSpec& spec) {
  switch (spec.kind) {
    case SamplerKind::kEulerAncestral:
    case SamplerKind::kDpm2Ancestral:
    case SamplerKind::kDpmpp2sAncestral:
    case SamplerKind::kDpmppSde:
      return true;
    case SamplerKind::kDpmpp2mSde:
    case SamplerKind::kDpmpp3mSde:
      return spec.eta != 0;
    case SamplerKind::kDdim:
      return spec.eta > 0;
    default:
      return false;
  }
}

at::Tensor sampler_sigmas(const SamplerSpec& spec, const models::NoiseSchedule& schedule, int64_t steps) {
  LS_CHECK(steps >= 1, "sampler ", spec.label, ": steps must be >= 1, got ", steps);
  if (spec.kind == SamplerKind::kDdim) return ddim_sigmas(schedule, steps);
  // A1111 KDiffusionSampler.get_sigmas: one more step, then the next-to-last sigma dropped.
  const int64_t n = steps + (spec.discard_penultimate_sigma ? 1 : 0);
  const double sigma_min = schedule_sigma_min(schedule), sigma_max = schedule_sigma_max(schedule);
  at::Tensor sigmas;
  switch (spec.schedule) {
    case ScheduleKind::kUniform: sigmas = discrete_sigmas(schedule, n); break;
    case ScheduleKind::kKarras: sigmas = karras_sigmas(n, sigma_min, sigma_max, 7.0); break;
    case ScheduleKind::kExponential: sigmas = exponential_sigmas(n, sigma_min, sigma_max); break;
    case ScheduleKind::kNormal: sigmas = normal_sigmas(schedule, n, false); break;
    case ScheduleKind::kSgmUniform: sigmas = normal_sigmas(schedule, n, true); break;
    case ScheduleKind::kSimple: sigmas = simple_sigmas(schedule, n); break;
    case ScheduleKind::kDdim: sigmas = ddim_schedule_sigmas(schedule, n); break;
    case ScheduleKind::kAutomatic:
      LS_FAIL("sampler ", spec.label, ": the schedule was not resolved (use parse_sampler)");
  }
  if (spec.discard_penultimate_sigma) {
    const int64_t len = sigmas.size(0);
    sigmas = at::cat({sigmas.slice(0, 0, len - 2), sigmas.slice(0, len - 1)});
  }
  return sigmas;
}

at::Tensor run_sampler(const SamplerSpec& spec, const DenoiseFn& model, at::Tensor x, const at::Tensor& sigmas,
                       const NoiseFn& noise, const StepCallback& cb) {
  SamplerOptions opts;
  opts.eta = spec.eta;
  opts.s_noise = spec.s_noise;
  opts.heun_solver = spec.heun_solver;
  switch (spec.kind) {
    case SamplerKind::kEuler: return sample_euler(model, std::move(x), sigmas, cb);
    case SamplerKind::kEulerAncestral: return sample_euler_ancestral(model, std::move(x), sigmas, noise, cb, opts);
    case SamplerKind::kHeun: return sample_heun(model, std::move(x), sigmas, cb);
    case SamplerKind::kDpm2: return sample_dpm_2(model, std::move(x), sigmas, cb);
    case SamplerKind::kDpm2Ancestral: return sample_dpm_2_ancestral(model, std::move(x), sigmas, noise, cb, opts);
    case SamplerKind::kLms: return sample_lms(model, std::move(x), sigmas, cb);
    case SamplerKind::kDpmpp2sAncestral: return sample_dpmpp_2s_ancestral(model, std::move(x), sigmas, noise, cb, opts);
    case SamplerKind::kDpmppSde: return sample_dpmpp_sde(model, std::move(x), sigmas, noise, cb, opts);
    case SamplerKind::kDpmpp2m: return sample_dpmpp_2m(model, std::move(x), sigmas, cb);
    case SamplerKind::kDpmpp2mSde: return sample_dpmpp_2m_sde(model, std::move(x), sigmas, noise, cb, opts);
    case SamplerKind::kDpmpp3mSde: return sample_dpmpp_3m_sde(model, std::move(x), sigmas, noise, cb, opts);
    case SamplerKind::kDdim: return sample_ddim(model, std::move(x), sigmas, noise, cb, spec.eta);
  }
  LS_FAIL("run_sampler: unknown sampler kind");
}

}  // namespace ls::sample
