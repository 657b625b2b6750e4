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
  std::vector<torch::Tensor> tensors;
  std::vector<float> weights;
  for (size_t slot = 0; slot < plan.images.size(); ++slot) {
    const ImageRecord& rec = d.images.at(static_cast<size_t>(plan.images[slot]));
    const SubsetConfig& subset = d.config.subsets.at(static_cast<size_t>(rec.subset));
    const std::initializer_list<uint64_t> where = {static_cast<uint64_t>(epoch), static_cast<uint64_t>(step),
                                                   static_cast<uint64_t>(first_slot) + slot};
    core::Rng aug_rng(core::derive_seed(seed_, where), {core::purpose_id("augment")});
    core::Rng caption_rng(core::derive_seed(seed_, where), {core::purpose_id("caption")});
    const Augmentation aug = draw_augmentation(rec, subset, aug_rng);
    if (cache_) {
      tensors.push_back(cache_->load(rec, subset, aug.flipped));
      batch.sizes.push_back(size_conditioning(rec, aug.crop, aug.flipped));
    } else {
      PreparedImage img = prepare_image(rec, aug.crop, aug.flipped);
      tensors.push_back(img.pixels);
      batch.sizes.push_back(img.size);
    }
    // kohya counts epochs from 1 (caption_dropout_every_n_epochs drops epochs n, 2n, ...).
    batch.captions.push_back(process_caption(rec.caption, subset.caption, epoch + 1, caption_rng));
    weights.push_back(rec.is_reg ? static_cast<float>(d.config.prior_loss_weight) : 1.0f);
    batch.paths.push_back(rec.path);
  }
  (cache_ ? batch.latents : batch.pixels) = torch::stack(tensors);
  batch.loss_weights = torch::tensor(weights, torch::kFloat32);
  return batch;
}

}  // namespace ls::data
