// Tensor metadata, views, copies, dtype conversions and error checks.
#include "core/tensor.h"

#include <cmath>
#include <limits>

#include <gtest/gtest.h>

namespace bertforge {
namespace {

Tensor iota(const Shape& shape) {
  std::vector<float> v(shape_numel(shape));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  return Tensor::from_vector(v, shape);
}

TEST(Tensor, FactoriesAndMetadata) {
  Tensor t = Tensor::zeros({2, 3, 4});
  EXPECT_EQ(t.dim(), 3);
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.size(-1), 4);
  EXPECT_EQ(t.strides(), (Shape{12, 4, 1}));
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.nbytes(), 96);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % kCpuAlignment, 0u);
  for (float v : t.to_float_vector()) EXPECT_EQ(v, 0.0f);
  EXPECT_EQ(Tensor::full({3}, 2.5f).to_float_vector(), (std::vector<float>{2.5f, 2.5f, 2.5f}));
  EXPECT_EQ(Tensor::scalar(4.0f).dim(), 0);
  EXPECT_EQ(Tensor::scalar(4.0f).item<float>(), 4.0f);
  EXPECT_EQ(t.str(), "Tensor(f32, cpu, [2, 3, 4])");
}

TEST(Tensor, PermuteTransposeAndContiguous) {
  Tensor t = iota({2, 3, 4});
  Tensor p = t.permute({2, 0, 1});  // (4, 2, 3)
  EXPECT_EQ(p.shape(), (Shape{4, 2, 3}));
  EXPECT_FALSE(p.is_contiguous());
  EXPECT_TRUE(p.shares_storage_with(t));
  // p[k][i][j] = t[i][j][k] = 12 i + 4 j + k
  for (int64_t k = 0; k < 4; ++k)
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < 3; ++j) EXPECT_EQ(p.at({k, i, j}), 12 * i + 4 * j + k);
  Tensor c = p.contiguous();
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_FALSE(c.shares_storage_with(t));
  EXPECT_EQ(c.to_float_vector(), p.to_float_vector());
  Tensor tt = t.transpose(0, 2);
  EXPECT_EQ(tt.shape(), (Shape{4, 3, 2}));
  EXPECT_EQ(tt.at({3, 1, 1}), t.at({1, 1, 3}));
}

TEST(Tensor, ViewAndReshape) {
  Tensor t = iota({2, 3, 4});
  Tensor v = t.view({6, -1});
  EXPECT_EQ(v.shape(), (Shape{6, 4}));
  EXPECT_TRUE(v.shares_storage_with(t));
  EXPECT_EQ(v.at({5, 3}), 23.0f);
  // A transposed tensor cannot be flattened without a copy...
  Tensor tr = t.transpose(1, 2);
  EXPECT_THROW(tr.view({24}), Error);
  // ...but reshape copies, in logical order.
  Tensor r = tr.reshape({24});
  EXPECT_FALSE(r.shares_storage_with(t));
  EXPECT_EQ(r.to_float_vector(), tr.contiguous().to_float_vector());
  // Splitting a dim of a permuted tensor is a view.
  Tensor split = t.permute({2, 0, 1}).view({2, 2, 2, 3});
  EXPECT_TRUE(split.shares_storage_with(t));
  EXPECT_EQ(split.reshape({24}).to_float_vector(), t.permute({2, 0, 1}).contiguous().to_float_vector());
  EXPECT_THROW(t.view({5, -1}), Error);
  EXPECT_THROW(t.view({-1, -1}), Error);
}

TEST(Tensor, SliceUnsqueezeSqueezeExpand) {
  Tensor t = iota({4, 5});
  Tensor s = t.slice(1, 1, 4);  // columns 1..3
  EXPECT_EQ(s.shape(), (Shape{4, 3}));
  EXPECT_EQ(s.at({2, 0}), 11.0f);
  EXPECT_FALSE(s.is_contiguous());
  Tensor rows = t.slice(0, -2, 4);  // the last two rows: contiguous
  EXPECT_TRUE(rows.is_contiguous());
  EXPECT_EQ(rows.at({0, 0}), 10.0f);
  EXPECT_THROW(t.slice(0, 3, 5), Error);
  Tensor u = s.unsqueeze(1);
  EXPECT_EQ(u.shape(), (Shape{4, 1, 3}));
  EXPECT_EQ(u.squeeze(1).to_float_vector(), s.to_float_vector());
  EXPECT_THROW(t.squeeze(0), Error);
  Tensor row = iota({1, 3});
  Tensor e = row.expand({2, 4, 3});
  EXPECT_EQ(e.shape(), (Shape{2, 4, 3}));
  EXPECT_EQ(e.at({1, 3, 2}), 2.0f);
  EXPECT_THROW(row.expand({2, 4}), Error);
}

TEST(Tensor, CopyWritesThroughViews) {
  Tensor t = Tensor::zeros({3, 4});
  t.slice(1, 2, 4).copy_(Tensor::ones({3, 2}));
  EXPECT_EQ(t.to_float_vector(), (std::vector<float>{0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1}));
  t.transpose(0, 1).slice(0, 0, 1).fill_(7.0f);  // column 0
  EXPECT_EQ(t.at({2, 0}), 7.0f);
  EXPECT_THROW(t.copy_(Tensor::ones({4, 3})), Error);
  Tensor c = t.clone();
  c.fill_(0.0f);
  EXPECT_EQ(t.at({2, 0}), 7.0f);  // clone owns its bytes
}

TEST(Tensor, DtypeConversions) {
  Tensor f = Tensor::from_vector<float>({1.5f, -2.25f, 1e-3f, 65504.0f, 3.0f}, {5});
  Tensor back = f.to(DType::kBF16).to(DType::kF32);
  // bfloat16 keeps 8 significant bits: relative error <= 2^-9.
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(back.at({i}), f.at({i}), std::fabs(f.at({i})) * (1.0f / 512));
  Tensor h = f.to(DType::kF16).to(DType::kF32);
  EXPECT_EQ(h.at({0}), 1.5f);
  EXPECT_EQ(h.at({3}), 65504.0f);  // largest half
  EXPECT_NEAR(h.at({2}), 1e-3f, 1e-3f / 1024);
  Tensor i = Tensor::from_vector<float>({-3.0f, 0.0f, 200.0f}, {3}).to(DType::kI64);
  EXPECT_EQ(i.dtype(), DType::kI64);
  EXPECT_EQ(i.data<int64_t>()[2], 200);
  EXPECT_EQ(Tensor::from_vector<int64_t>({-5, 9}, {2}).to(DType::kI8).to_float_vector(),
            (std::vector<float>{-5, 9}));
  EXPECT_EQ(Tensor::from_vector<int32_t>({1 << 30}, {1}).item<int64_t>(), 1 << 30);
  EXPECT_THROW(f.data<int32_t>(), Error);
}

TEST(Half, RoundTripsAndSpecialValues) {
  // Every finite half converts to float and back unchanged.
  for (uint32_t bits = 0; bits < 0x10000u; ++bits) {
    const f16 h{static_cast<uint16_t>(bits)};
    const float f = F16ToFloat(h);
    if (std::isnan(f)) continue;
    EXPECT_EQ(FloatToF16(f).bits, h.bits) << "bits " << bits;
  }
  EXPECT_EQ(F16ToFloat(FloatToF16(1e6f)), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(F16ToFloat(FloatToF16(std::nanf("")))));
  EXPECT_EQ(F16ToFloat(FloatToF16(5.960464477539063e-8f)), 5.960464477539063e-8f);  // smallest subnormal
  // Ties round to even: 1 + 2^-11 lies halfway between 1 and 1 + 2^-10.
  EXPECT_EQ(F16ToFloat(FloatToF16(1.0f + 1.0f / 2048)), 1.0f);
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(1.0f + 1.0f / 256)), 1.0f);  // bf16 tie to even
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(-3.0f)), -3.0f);
  EXPECT_TRUE(std::isnan(Bf16ToFloat(FloatToBf16(std::nanf("")))));
}

TEST(Tensor, ErrorsNameTheProblem) {
  try {
    Tensor::zeros({2, 3}).permute({0, 0});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("repeated"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("tensor.cpp"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Tensor().shape(), Error);
  EXPECT_THROW(Tensor::empty({2}, DType::kF32, Device::cuda()), Error);
  EXPECT_THROW(Tensor::empty({-1}), Error);
}

}  // namespace
}  // namespace bertforge

namespace bertforge {
namespace {

TEST(Device, ParsesTheDeviceFlag) {
  EXPECT_EQ(parse_device("cpu").value(), Device::cpu());
  EXPECT_EQ(parse_device("cuda").value(), Device::cuda(0));
  EXPECT_EQ(parse_device("cuda:3").value(), Device::cuda(3));
  for (const char* bad : {"gpu", "cuda:", "cuda:-1", "cuda:x", "CPU", ""}) {
    const absl::StatusOr<Device> parsed = parse_device(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_NE(std::string(parsed.status().message()).find("cpu, cuda or cuda:N"), std::string::npos);
  }
}

}  // namespace
}  // namespace bertforge
