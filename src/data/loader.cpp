// Batch loading: pixels or cached latents, processed captions, size conditioning, loss weights.
#include "data/loader.h"

#include "core/error.h"
#include "core/rng.h"
#include "data/latent_cache.h"

namespace ls::data {

Augmentation draw_augmentation(const ImageRecord& record, const SubsetConfig& subset, core::Rng& rng) {
  Augmentation a;
  a.flipped = subset.flip_aug && rng.uniform() < 0.5;
  a.crop = choose_crop(record.bucket.resized, record.bucket.bucket, subset.random_crop, rng);
  return a;
}

BatchLoader::BatchLoader(const std::vector<DatasetIndex>& datasets, uint64_t seed, const LatentCache* cache)
    : datasets_(datasets), seed_(seed), cache_(cache) {}

Batch BatchLoader::load(const BatchPlan& plan, int epoch, int64_t step, int64_t first_slot) const {
  const DatasetIndex& d = datasets_.at(static_cast<size_t>(plan.dataset));
  Batch batch;
  batch.dataset = plan.dataset;
  std::vector<torch::Tensor> tensors, masks;
  std::vector<float> weights;
  bool any_mask = false;
  for (size_t slot = 0; slot < plan.images.size(); ++slot) {
    const ImageRecord& rec = d.images.at(static_cast<size_t>(plan.images[slot]));
    const SubsetConfig& subset = d.config.subsets.at(static_cast<size_t>(rec.subset));
    const std::initializer_list<uint64_t> where = {static_cast<uint64_t>(epoch), static_cast<uint64_t>(step),
                                                   static_cast<uint64_t>(first_slot) + slot};
    core::Rng aug_rng(core::derive_seed(seed_, where), {core::purpose_id("augment")});
    core::Rng caption_rng(core::derive_seed(seed_, where), {core::purpose_id("caption")});
    const Augmentation aug = draw_augmentation(rec, subset, aug_rng);
    if (cache_) {
      CachedLatents cached = cache_->load_entry(rec, subset, aug.flipped);
      tensors.push_back(cached.latents);
      masks.push_back(cached.mask);
      batch.sizes.push_back(size_conditioning(rec, aug.crop, aug.flipped));
    } else {
      PreparedImage img = prepare_image(rec, aug.crop, aug.flipped);
      tensors.push_back(img.pixels);
      masks.push_back(img.mask);
      batch.sizes.push_back(img.size);
    }
    any_mask = any_mask || masks.back().defined();
    // kohya counts epochs from 1 (caption_dropout_every_n_epochs drops epochs n, 2n, ...).
    batch.captions.push_back(process_caption(rec.caption, subset.caption, epoch + 1, caption_rng));
    weights.push_back(rec.is_reg ? static_cast<float>(d.config.prior_loss_weight) : 1.0f);
    batch.paths.push_back(rec.path);
  }
  (cache_ ? batch.latents : batch.pixels) = torch::stack(tensors);
  if (any_mask) {
    const auto& b = d.images.at(static_cast<size_t>(plan.images.front())).bucket.bucket;
    for (torch::Tensor& m : masks)
      if (!m.defined()) m = torch::ones({1, b.height, b.width}, torch::kFloat32);
    batch.masks = torch::stack(masks);
  }
  batch.loss_weights = torch::tensor(weights, torch::kFloat32);
  return batch;
}

}  // namespace ls::data
