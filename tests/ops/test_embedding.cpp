// tests/ops/test_embedding.cpp — embedding: forward gathers rows; backward
// scatter-adds dout over repeated ids (hand-computed reference, gradcheck,
// bitwise identical for 1 and 2 threads); ids are checked with an error
// naming the bad id.
#include "ops/embedding.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <random>
#include <string>
#include <vector>

#include "autograd/engine.h"
#include "tests/support/test_support.h"

namespace bertforge {
namespace {

using namespace test_support;

TEST(Embedding, ForwardGathersRows) {
  const int64_t vocab = 7, dim = 5;
  const Tensor table = random_tensor({vocab, dim}, 1);
  const std::vector<int64_t> ids = {3, 0, 6, 3, 1, 5};
  const Tensor out = embedding(Tensor::from_vector(ids, {2, 3}), table);
  ASSERT_EQ(out.shape(), (Shape{2, 3, dim}));
  const std::vector<float> t = table.to_float_vector(), y = out.to_float_vector();
  for (size_t r = 0; r < ids.size(); ++r) {
    for (int64_t c = 0; c < dim; ++c) EXPECT_EQ(y[r * dim + c], t[ids[r] * dim + c]) << "row " << r;
  }
}

TEST(Embedding, BackwardScatterAddsRepeatedIds) {
  const int64_t vocab = 5, dim = 3;
  Tensor table = random_param({vocab, dim}, 2);
  const Tensor ids = Tensor::from_vector(std::vector<int64_t>{1, 3, 1, 0, 1}, {5});
  const std::vector<float> d = {0.5f, 1.0f, -2.0f,   //
                                3.0f, 0.25f, 4.0f,   //
                                -1.5f, 2.0f, 0.75f,  //
                                7.0f, -3.0f, 1.0f,   //
                                0.125f, 0.5f, -0.5f};
  autograd::backward(embedding(ids, table), Tensor::from_vector(d, {5, dim}));
  // Row 1 gets rows 0, 2 and 4 of dout; row 3 row 1; row 0 row 3; rows 2 and 4 nothing.
  const std::vector<float> expected = {7.0f,   -3.0f, 1.0f,    //
                                       -0.875f, 3.5f, -1.75f,  //
                                       0.0f,   0.0f,  0.0f,    //
                                       3.0f,   0.25f, 4.0f,    //
                                       0.0f,   0.0f,  0.0f};
  EXPECT_EQ(table.grad().to_float_vector(), expected);  // every sum is exact in float
}

TEST(Embedding, GradientAccumulatesAcrossCalls) {
  Tensor table = random_param({4, 2}, 3);
  const Tensor ids = Tensor::from_vector(std::vector<int64_t>{2}, {1});
  autograd::backward(embedding(ids, table), Tensor::ones({1, 2}));
  autograd::backward(embedding(ids, table), Tensor::ones({1, 2}));
  EXPECT_EQ(table.grad().to_float_vector(), (std::vector<float>{0, 0, 0, 0, 2, 2, 0, 0}));
}

TEST(Embedding, Gradcheck) {
  Tensor table = random_param({6, 4}, 4);
  const Tensor ids = Tensor::from_vector(std::vector<int64_t>{5, 0, 5, 2, 2, 2}, {2, 3});
  expect_gradcheck([&ids](const std::vector<Tensor>& in) { return embedding(ids, in[0]); }, {table});
}

// BERT-sized rows and heavy repetition, above the parallel threshold: the column split
// must give the same bits for any thread count, and match a double-precision sum to
// float rounding (|error| <= n_repeats * 2^-23 * sum |terms|, here a loose 1e-4).
TEST(Embedding, LargeBackwardIsDeterministicAndCorrect) {
  const int64_t vocab = 50, dim = 768, n = 2048;
  std::mt19937 rng(5);
  std::uniform_int_distribution<int64_t> pick(0, vocab - 1);
  std::vector<int64_t> id_values(n);
  for (int64_t& id : id_values) id = pick(rng);
  const Tensor ids = Tensor::from_vector(id_values, {n});
  const Tensor dout = random_tensor({n, dim}, 6);
  auto grad_with_threads = [&](int threads) {
    omp_set_num_threads(threads);
    Tensor table = Tensor::zeros({vocab, dim});
    table.set_requires_grad(true);
    autograd::backward(embedding(ids, table), dout);
    return table.grad().to_float_vector();
  };
  const int saved = omp_get_max_threads();
  const std::vector<float> one = grad_with_threads(1), two = grad_with_threads(2);
  omp_set_num_threads(saved);
  EXPECT_EQ(one, two);

  std::vector<double> expected(vocab * dim, 0.0);
  const std::vector<float> d = dout.to_float_vector();
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < dim; ++c) expected[id_values[r] * dim + c] += d[r * dim + c];
  }
  for (int64_t k = 0; k < vocab * dim; ++k) ASSERT_NEAR(two[k], expected[k], 1e-4) << "element " << k;
}

TEST(Embedding, RejectsOutOfRangeIdsNamingThem) {
  const Tensor table = random_tensor({5, 2}, 7);
  for (int64_t bad : {int64_t{9}, int64_t{5}, int64_t{-1}}) {
    const Tensor ids = Tensor::from_vector(std::vector<int64_t>{0, 4, bad, 1}, {4});
    try {
      embedding(ids, table);
      ADD_FAILURE() << "id " << bad << " was accepted";
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find("id " + std::to_string(bad) + " at position 2"), std::string::npos) << message;
    }
  }
}

TEST(Embedding, RejectsBadDtypesAndShapes) {
  const Tensor table = random_tensor({5, 2}, 8);
  EXPECT_THROW(embedding(Tensor::zeros({3}), table), Error);  // f32 ids
  EXPECT_THROW(embedding(Tensor::zeros({3}, DType::kI64), Tensor::zeros({5})), Error);
  EXPECT_THROW(embedding(Tensor::zeros({3}, DType::kI64), Tensor::zeros({5, 2}, DType::kI64)), Error);
}

}  // namespace
}  // namespace bertforge
