// data/synthetic: folder layout and counts, byte-identical output for a seed, pixels that match
// the caption's words (shape colour at the probe, background colour in the corner), varied sizes
// and aspect ratios, the kohya TOML read back with toml++ (escaping included), stale-file refusal.
#include <fstream>
#include <numeric>
#include <set>
#include <sstream>

#include <toml++/toml.h>

#include "core/error.h"
#include "data/synthetic.h"
#include "io/image.h"
#include "core/atomic_file.h"
#include "support/support.h"

namespace {

namespace fs = std::filesystem;
using ls::data::make_synthetic_dataset;
using ls::data::SyntheticOptions;
using ls::test::TempDir;

std::set<std::string> names_in(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

TEST(SyntheticDataset, LayoutAndCounts) {
  TempDir dir;
  SyntheticOptions o;
  o.reg_images = 4;
  o.reg_repeats = 2;
  const auto ds = make_synthetic_dataset(dir.path().string(), o);
  EXPECT_EQ(names_in(dir.path()), (std::set<std::string>{"img", "reg", "dataset.toml"}));
  EXPECT_EQ(ds.train_dir, (dir / "img" / "10_lsshape").string());
  EXPECT_EQ(ds.reg_dir, (dir / "reg" / "2_lsshape").string());
  EXPECT_EQ(names_in(dir / "img"), std::set<std::string>{"10_lsshape"});
  EXPECT_EQ(names_in(dir / "reg"), std::set<std::string>{"2_lsshape"});
  const auto train = names_in(ds.train_dir);
  EXPECT_EQ(train.size(), 24u);
  EXPECT_TRUE(train.count("0000.png") && train.count("0000.txt") && train.count("0011.png") && train.count("0011.txt"));
  EXPECT_EQ(names_in(ds.reg_dir).size(), 8u);
  ASSERT_EQ(ds.images.size(), 16u);
  ASSERT_EQ(ds.items.size(), 16u);
  for (size_t i = 0; i < ds.items.size(); ++i) {
    const auto& it = ds.items[i];
    EXPECT_EQ(it.image_path, ds.images[i]);
    EXPECT_EQ(it.is_reg, i >= 12);
    EXPECT_EQ(ls::core::read_file(it.caption_path), it.caption + "\n");
    // Train captions start with the class tokens; reg captions are the plain description.
    EXPECT_EQ(it.caption.rfind("lsshape, ", 0) == 0, !it.is_reg) << it.caption;
    EXPECT_NE(it.caption.find(it.color + " " + it.shape + ", " + it.size + ", " + it.background +
                              " background, " + it.position),
              std::string::npos)
        << it.caption;
  }
}

// The words are true of the pixels: the probe is the shape's colour, the far corner the
// background's, exactly (PNG and lossless WebP), and the sizes are as described.
TEST(SyntheticDataset, PixelsMatchTheCaptions) {
  for (const std::string format : {"png", "webp"}) {
    TempDir dir;
    SyntheticOptions o;
    o.format = format;
    o.seed = 5;
    o.images = 12;
    o.reg_images = 3;
    const auto ds = make_synthetic_dataset(dir.path().string(), o);
    std::set<std::string> shapes, colors;
    std::set<std::pair<int, int>> ratios;  // reduced aspect ratios
    for (const auto& it : ds.items) {
      const cv::Mat img = ls::io::read_image_rgb(it.image_path);
      ASSERT_EQ(img.cols, it.width);
      ASSERT_EQ(img.rows, it.height);
      const auto size = ls::io::read_image_size(it.image_path);
      EXPECT_EQ(size.width * 100000 + size.height, it.width * 100000 + it.height);
      EXPECT_GE(std::min(it.width, it.height), o.min_side);
      EXPECT_LE(std::max(it.width, it.height), o.max_side);
      const cv::Vec3b probe = img.at<cv::Vec3b>(it.probe_y, it.probe_x);
      EXPECT_EQ(probe, cv::Vec3b(it.rgb[0], it.rgb[1], it.rgb[2])) << it.caption << " " << format;
      const cv::Vec3b corner = img.at<cv::Vec3b>(0, 0);
      EXPECT_EQ(corner, cv::Vec3b(it.background_from[0], it.background_from[1], it.background_from[2])) << it.caption;
      const cv::Vec3b far = img.at<cv::Vec3b>(img.rows - 1, img.cols - 1);
      EXPECT_EQ(far, cv::Vec3b(it.background_to[0], it.background_to[1], it.background_to[2])) << it.caption;
      EXPECT_NE(it.rgb, it.background_from) << "shape must stand out: " << it.caption;
      EXPECT_NE(it.rgb, it.background_to) << it.caption;
      shapes.insert(it.shape);
      colors.insert(it.color);
      const int g = std::gcd(it.width, it.height);
      ratios.insert({it.width / g, it.height / g});
    }
    EXPECT_GE(ratios.size(), 2u) << "need several buckets";
    EXPECT_GE(shapes.size(), 3u);
    EXPECT_GE(colors.size(), 3u);
  }
}

TEST(SyntheticDataset, SameSeedSameBytesOtherSeedOtherImages) {
  TempDir a, b, c;
  SyntheticOptions o;
  o.images = 6;
  o.reg_images = 2;
  o.format = "jpg";
  const auto da = make_synthetic_dataset(a.path().string(), o);
  const auto db = make_synthetic_dataset(b.path().string(), o);
  o.seed = 1;
  const auto dc = make_synthetic_dataset(c.path().string(), o);
  int differing_images = 0, differing_captions = 0;
  for (size_t i = 0; i < da.items.size(); ++i) {
    EXPECT_EQ(ls::core::read_file(da.items[i].image_path), ls::core::read_file(db.items[i].image_path)) << i;
    EXPECT_EQ(ls::core::read_file(da.items[i].caption_path), ls::core::read_file(db.items[i].caption_path)) << i;
    differing_images += ls::core::read_file(da.items[i].image_path) != ls::core::read_file(dc.items[i].image_path);
    differing_captions += da.items[i].caption != dc.items[i].caption;
  }
  EXPECT_EQ(differing_images, 8);
  EXPECT_GE(differing_captions, 6);
  // The TOML differs only by the output folder.
  std::string ta = ls::core::read_file(da.config_toml), tb = ls::core::read_file(db.config_toml);
  for (std::string* t : {&ta, &tb}) {
    const std::string root = t == &ta ? a.path().string() : b.path().string();
    for (size_t at; (at = t->find(root)) != std::string::npos;) t->replace(at, root.size(), "ROOT");
  }
  EXPECT_EQ(ta, tb);
  // Re-running into the same folder with the same options is allowed and rewrites the same bytes.
  const std::string first = ls::core::read_file(da.images[0]);
  o.seed = 0;
  make_synthetic_dataset(a.path().string(), o);
  EXPECT_EQ(ls::core::read_file(da.images[0]), first);
}

TEST(SyntheticDataset, KohyaTomlReadsBack) {
  TempDir dir;
  const fs::path out = dir / "my \"quoted\" \\ set";
  SyntheticOptions o;
  o.images = 3;
  o.reg_images = 2;
  o.class_tokens = "ls shape";
  o.caption_extension = ".caption";
  o.resolution = 1024;
  o.batch_size = 4;
  const auto ds = make_synthetic_dataset(out.string(), o);
  const toml::table t = toml::parse_file(ds.config_toml);
  EXPECT_EQ(t["general"]["caption_extension"].value<std::string>(), ".caption");
  const auto& d = t["datasets"][0];
  EXPECT_EQ(d["resolution"].value<int64_t>(), 1024);
  EXPECT_EQ(d["batch_size"].value<int64_t>(), 4);
  EXPECT_EQ(d["enable_bucket"].value<bool>(), true);
  EXPECT_EQ(d["min_bucket_reso"].value<int64_t>(), 256);
  EXPECT_EQ(d["max_bucket_reso"].value<int64_t>(), 1024);
  EXPECT_EQ(d["bucket_reso_steps"].value<int64_t>(), 64);
  const auto& train = d["subsets"][0];
  EXPECT_EQ(train["image_dir"].value<std::string>(), ds.train_dir);
  EXPECT_EQ(ds.train_dir, (out / "img" / "10_ls shape").string());
  EXPECT_EQ(train["num_repeats"].value<int64_t>(), 10);
  EXPECT_EQ(train["class_tokens"].value<std::string>(), "ls shape");
  EXPECT_FALSE(train["is_reg"].value<bool>().has_value());
  const auto& reg = d["subsets"][1];
  EXPECT_EQ(reg["image_dir"].value<std::string>(), ds.reg_dir);
  EXPECT_EQ(reg["is_reg"].value<bool>(), true);
  EXPECT_EQ(reg["num_repeats"].value<int64_t>(), 1);
  EXPECT_FALSE(d["subsets"][2]);
  EXPECT_TRUE(fs::exists(ds.train_dir + "/0002.caption"));
  // Without reg images there is one subset.
  o.reg_images = 0;
  TempDir plain;
  const toml::table p = toml::parse_file(make_synthetic_dataset(plain.path().string(), o).config_toml);
  EXPECT_TRUE(p["datasets"][0]["subsets"][0]);
  EXPECT_FALSE(p["datasets"][0]["subsets"][1]);
}

TEST(SyntheticDataset, RefusesForeignFilesAndBadOptions) {
  TempDir dir;
  SyntheticOptions o;
  o.images = 2;
  make_synthetic_dataset(dir.path().string(), o);
  std::ofstream(dir / "img" / "10_lsshape" / "extra.png") << "x";
  EXPECT_THROW(make_synthetic_dataset(dir.path().string(), o), ls::Error);
  fs::remove(dir / "img" / "10_lsshape" / "extra.png");
  o.repeats = 5;  // a second subset folder would mix two datasets
  EXPECT_THROW(make_synthetic_dataset(dir.path().string(), o), ls::Error);
  o.repeats = 10;
  o.format = "jpg";  // 0000.png would be left next to 0000.jpg
  EXPECT_THROW(make_synthetic_dataset(dir.path().string(), o), ls::Error);
  fs::create_directories(dir / "reg" / "1_other");
  o.format = "png";
  EXPECT_THROW(make_synthetic_dataset(dir.path().string(), o), ls::Error);
  fs::remove_all(dir / "reg");
  EXPECT_NO_THROW(make_synthetic_dataset(dir.path().string(), o));

  auto bad = [](auto edit) {
    SyntheticOptions b;
    edit(b);
    TempDir d;
    EXPECT_THROW(make_synthetic_dataset(d.path().string(), b), ls::Error);
  };
  bad([](SyntheticOptions& b) { b.format = "gif"; });
  bad([](SyntheticOptions& b) { b.images = 0; });
  bad([](SyntheticOptions& b) { b.min_side = 700; });
  bad([](SyntheticOptions& b) { b.class_tokens = "a/b"; });
  bad([](SyntheticOptions& b) { b.caption_extension = "txt"; });
  bad([](SyntheticOptions& b) { b.caption_extension = ".png"; });
}

}  // namespace
