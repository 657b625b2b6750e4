// Latent and text-encoder caches over one mechanism: TensorCache files named by content keys.
#include "data/latent_cache.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/progress.h"
#include "core/rng.h"
#include "core/sha256.h"
#include "data/bucket_image.h"
#include "io/safetensors.h"

namespace fs = std::filesystem;

namespace ls::data {

TensorCache::TensorCache(std::string dir) : dir_(std::move(dir)) {}

std::string TensorCache::path_for(const std::string& key) const { return (fs::path(dir_) / (key + ".safetensors")).string(); }

bool TensorCache::contains(const std::string& key) const {
  std::error_code ec;
  return fs::is_regular_file(path_for(key), ec);
}

TensorMap TensorCache::load(const std::string& key) const {
  const std::string path = path_for(key);
  LS_CHECK(contains(key), path, ": not in the cache; fill the cache before loading from it");
  io::SafetensorsReader reader(path);
  TensorMap out;
  for (const io::TensorInfo& info : reader.tensors()) out[info.name] = reader.load(info.name);
  return out;
}

void TensorCache::clean_interrupted_writes() const { core::clean_interrupted_writes(dir_); }

void TensorCache::store(const std::string& key, const TensorMap& tensors,
                        const std::map<std::string, std::string>& metadata) const {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  LS_CHECK(!ec, dir_, ": cannot create the cache folder (", ec.message(), "); pass a writable --cache-dir");
  std::vector<std::pair<std::string, torch::Tensor>> list;
  for (const auto& [name, t] : tensors) list.emplace_back(name, t.detach().to(torch::kCPU).contiguous());
  io::save_safetensors(path_for(key), list, metadata);
}

namespace {

// The crop a cached latent was made with: latents are cached only for center crops.
CropOffset cached_crop(const ImageRecord& rec) {
  core::Rng unused(0);
  return choose_crop(rec.bucket.resized, rec.bucket.bucket, /*random_crop=*/false, unused);
}

}  // namespace

std::string default_cache_dir(const std::string& dataset_path) {
  std::error_code ec;
  const fs::path p = fs::absolute(dataset_path);
  return ((fs::is_directory(p, ec) ? p : p.parent_path()) / ".lorastudio-cache").string();
}

std::string vae_cache_id(const std::string& vae_sha256, const std::string& dtype_name) {
  return str_cat("sdxl-vae sha256:", vae_sha256, " dtype:", dtype_name);
}

LatentCache::LatentCache(std::string dir, std::string model_id)
    : files_(std::move(dir)), model_id_(std::move(model_id)) {}

namespace {

// Images with a loss mask keep it in their entry: the key names the mask's source (alpha, or the
// mask image's content) so that editing the mask re-encodes the entry. Empty without a mask, so the
// keys of unmasked images are what they always were.
std::string latent_cache_mask_line(const ImageRecord& rec) {
  if (rec.mask == ImageRecord::Mask::kAlpha) return "\nmask alpha";
  if (rec.mask == ImageRecord::Mask::kImage) return "\nmask image " + rec.mask_hash;
  return "";
}

}  // namespace

// What decides an entry's latents: the key without the mask.
std::string LatentCache::latent_source(const ImageRecord& rec, const SubsetConfig& subset) const {
  const CropOffset crop = cached_crop(rec);
  return str_cat("lorastudio latents v1\n", rec.content_hash, "\nbucket ", reso_text(rec.bucket.bucket), "\nresized ",
                 reso_text(rec.bucket.resized), "\ncrop ", crop.left, ",", crop.top, "\nflip ", subset.flip_aug ? 1 : 0,
                 "\nmodel ", model_id_);
}

std::string LatentCache::key(const ImageRecord& rec, const SubsetConfig& subset) const {
  return core::sha256_hex(latent_source(rec, subset) + latent_cache_mask_line(rec));
}

bool CacheShard::owns(const std::string& key) const {
  if (count <= 1) return true;
  // Keys are SHA-256 hex: their first 8 digits are uniform enough to deal the entries out.
  return std::stoull(key.substr(0, 8), nullptr, 16) % static_cast<uint64_t>(count) == static_cast<uint64_t>(index);
}

torch::Tensor latent_noise(const torch::Tensor& mean, uint64_t seed, const std::vector<uint64_t>& noise_ids) {
  LS_CHECK(mean.dim() >= 1 && mean.size(0) == static_cast<int64_t>(noise_ids.size()), "latent noise: ",
           noise_ids.size(), " noise ids for a batch of ", mean.dim() ? mean.size(0) : 0);
  std::vector<torch::Tensor> eps;
  for (const uint64_t id : noise_ids) {
    auto generator = at::detail::createCPUGenerator(core::derive_seed(seed, {id}));
    eps.push_back(torch::randn(mean.sizes().slice(1), generator, torch::kFloat32));
  }
  return torch::stack(eps).to(mean.device(), mean.scalar_type());
}

CacheStats LatentCache::fill(const std::vector<DatasetIndex>& datasets, const ImageEncoder& encoder, int batch_size,
                             bool show_progress, const CacheShard& shard) const {
  LS_CHECK(batch_size >= 1, "latent cache: batch size must be at least 1");
  if (shard.count <= 1) files_.clean_interrupted_writes();
  struct Job {
    const ImageRecord* rec;
    const SubsetConfig* subset;
    std::string key;
  };
  CacheStats stats;
  std::vector<Job> jobs;
  std::set<std::string> queued;  // the same file listed twice (two subsets) is encoded once
  for (const DatasetIndex& d : datasets)
    for (const ImageRecord& rec : d.images) {
      if (rec.num_repeats <= 0) continue;
      const SubsetConfig& subset = d.config.subsets.at(static_cast<size_t>(rec.subset));
      std::string k = key(rec, subset);
      if (files_.contains(k)) ++stats.hits;
      else if (!queued.insert(k).second) continue;
      else if (!shard.owns(k)) ++stats.others;
      else jobs.push_back({&rec, &subset, std::move(k)});
    }
  // Same-bucket runs so each encoder call sees one shape.
  std::stable_sort(jobs.begin(), jobs.end(), [](const Job& a, const Job& b) { return a.rec->bucket.bucket < b.rec->bucket.bucket; });
  core::Progress progress("caching latents", static_cast<int64_t>(jobs.size()), "img", show_progress && !jobs.empty());
  for (size_t start = 0; start < jobs.size();) {
    size_t end = start + 1;
    while (end < jobs.size() && end - start < static_cast<size_t>(batch_size) &&
           jobs[end].rec->bucket.bucket == jobs[start].rec->bucket.bucket)
      ++end;
    std::vector<torch::Tensor> plain, flipped, masks;
    std::vector<uint64_t> plain_ids, flipped_ids;
    for (size_t i = start; i < end; ++i) {
      // What the latents depend on names their noise (the mask does not: a masked entry holds the
      // same latents as the unmasked one); the flipped latent has its own draw, as kohya encodes it apart.
      const uint64_t id = std::stoull(core::sha256_hex(latent_source(*jobs[i].rec, *jobs[i].subset)).substr(0, 16), nullptr, 16);
      plain_ids.push_back(core::derive_seed(id, {core::purpose_id("cached latent noise")}));
      if (jobs[i].subset->flip_aug) flipped_ids.push_back(core::derive_seed(id, {core::purpose_id("cached flipped latent noise")}));
      const CropOffset crop = cached_crop(*jobs[i].rec);
      PreparedImage img = prepare_image(*jobs[i].rec, crop, false);
      plain.push_back(img.pixels);
      masks.push_back(img.mask);
      if (jobs[i].subset->flip_aug) flipped.push_back(torch::flip(plain.back(), {2}));
    }
    const torch::Tensor lat = encoder(torch::stack(plain), plain_ids).to(torch::kCPU, torch::kFloat32);
    const torch::Tensor lat_flipped =
        flipped.empty() ? torch::Tensor() : encoder(torch::stack(flipped), flipped_ids).to(torch::kCPU, torch::kFloat32);
    int64_t fi = 0;
    for (size_t i = start; i < end; ++i) {
      const Job& job = jobs[i];
      TensorMap tensors{{"latents", lat[static_cast<int64_t>(i - start)]}};
      if (masks[i - start].defined()) tensors["mask"] = masks[i - start];  // kohya's npz "alpha_mask"
      if (job.subset->flip_aug) tensors["latents_flipped"] = lat_flipped[fi++];
      files_.store(job.key, tensors,
                   {{"lorastudio.cache", "latents"}, {"image", job.rec->path}, {"content_sha256", job.rec->content_hash},
                    {"bucket", reso_text(job.rec->bucket.bucket)}, {"model", model_id_}});
      ++stats.encoded;
    }
    progress.advance(static_cast<int64_t>(end - start));
    start = end;
  }
  return stats;
}

torch::Tensor LatentCache::load(const ImageRecord& rec, const SubsetConfig& subset, bool flipped) const {
  TensorMap m = files_.load(key(rec, subset));
  const char* name = flipped ? "latents_flipped" : "latents";
  auto it = m.find(name);
  LS_CHECK(it != m.end(), files_.path_for(key(rec, subset)), ": cache entry has no '", name,
           "'; delete the file to re-encode it");
  return it->second;
}

CachedLatents LatentCache::load_entry(const ImageRecord& rec, const SubsetConfig& subset, bool flipped) const {
  TensorMap m = files_.load(key(rec, subset));
  const char* name = flipped ? "latents_flipped" : "latents";
  auto it = m.find(name);
  LS_CHECK(it != m.end(), files_.path_for(key(rec, subset)), ": cache entry has no '", name,
           "'; delete the file to re-encode it");
  CachedLatents out{it->second, {}};
  if (rec.mask != ImageRecord::Mask::kNone) {
    auto mask = m.find("mask");
    LS_CHECK(mask != m.end(), files_.path_for(key(rec, subset)), ": cache entry has no 'mask'; delete the file to ",
             "re-encode it");
    out.mask = flipped ? torch::flip(mask->second, {2}) : mask->second;
  }
  return out;
}

void require_latent_cacheable(const DataConfig& config) {
  for (const DatasetConfig& d : config.datasets)
    for (const SubsetConfig& s : d.subsets)
      LS_CHECK(!s.random_crop, config.source, ": subset ", s.image_dir,
               " uses random_crop, which cuts a new crop every epoch, so its latents cannot be cached;",
               " set random_crop = false or train without the latent cache (kohya refuses this too)");
}

void require_text_cacheable(const DataConfig& config) {
  for (const DatasetConfig& d : config.datasets)
    for (const SubsetConfig& s : d.subsets)
      LS_CHECK(caption_is_static(s.caption), config.source, ": subset ", s.image_dir,
               " changes its captions every epoch (shuffle_caption, caption_dropout_rate,",
               " caption_dropout_every_n_epochs or caption_tag_dropout_rate), so text-encoder outputs cannot be",
               " cached; turn those off or train without the text-encoder cache (kohya refuses this too)");
}

TextCache::TextCache(std::string dir, std::string model_id) : files_(std::move(dir)), model_id_(std::move(model_id)) {}

std::string TextCache::key(const std::string& caption) const {
  return core::sha256_hex(str_cat("lorastudio text v1\nmodel ", model_id_, "\ncaption ", caption));
}

CacheStats TextCache::fill(const std::vector<std::string>& captions, const TextEncoder& encoder, int batch_size,
                           bool show_progress, const CacheShard& shard) const {
  LS_CHECK(batch_size >= 1, "text cache: batch size must be at least 1");
  if (shard.count <= 1) files_.clean_interrupted_writes();
  CacheStats stats;
  std::vector<std::string> missing;
  std::set<std::string> seen;
  for (const std::string& c : captions) {
    if (!seen.insert(c).second) continue;
    if (files_.contains(key(c))) ++stats.hits;
    else if (!shard.owns(key(c))) ++stats.others;
    else missing.push_back(c);
  }
  core::Progress progress("caching text", static_cast<int64_t>(missing.size()), "caption",
                          show_progress && !missing.empty());
  for (size_t start = 0; start < missing.size(); start += static_cast<size_t>(batch_size)) {
    const std::vector<std::string> chunk(missing.begin() + static_cast<long>(start),
                                         missing.begin() + static_cast<long>(std::min(missing.size(), start + static_cast<size_t>(batch_size))));
    const std::vector<TensorMap> out = encoder(chunk);
    LS_CHECK(out.size() == chunk.size(), "text cache: the encoder returned ", out.size(), " results for ", chunk.size(),
             " captions");
    for (size_t i = 0; i < chunk.size(); ++i) {
      files_.store(key(chunk[i]), out[i], {{"lorastudio.cache", "text"}, {"caption", chunk[i]}, {"model", model_id_}});
      ++stats.encoded;
    }
    progress.advance(static_cast<int64_t>(chunk.size()));
  }
  return stats;
}

TensorMap TextCache::load(const std::string& caption) const { return files_.load(key(caption)); }

std::vector<std::string> static_captions(const std::vector<DatasetIndex>& datasets) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  core::Rng unused(0);  // static processing draws nothing
  for (const DatasetIndex& d : datasets)
    for (const ImageRecord& rec : d.images) {
      if (rec.num_repeats <= 0) continue;
      const SubsetConfig& s = d.config.subsets.at(static_cast<size_t>(rec.subset));
      std::string c = process_caption(rec.caption, s.caption, 0, unused);
      if (seen.insert(c).second) out.push_back(std::move(c));
    }
  return out;
}

}  // namespace ls::data
