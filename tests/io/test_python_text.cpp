// io/python_text: every expected text below is what CPython 3.11 printed for the same value
// (repr(float), str(ast.literal_eval(text)), json.dumps(obj)), so these compare against Python
// itself, not against our reading of it.
#include <cmath>
#include <limits>

#include <gtest/gtest.h>

#include "io/python_text.h"

namespace {

using ls::io::python_float;
using ls::io::python_json_dumps;
using ls::io::python_literal_str;

TEST(PythonTextFloat, ReprOfFloats) {
  const std::pair<double, const char*> cases[] = {
      {1.0, "1.0"},          {0.0001, "0.0001"},       {1e-05, "1e-05"},
      {2e-06, "2e-06"},      {1e16, "1e+16"},          {1e15, "1000000000000000.0"},
      {123.456, "123.456"},  {-0.5, "-0.5"},           {0.0, "0.0"},
      {-0.0, "-0.0"},        {1.5e300, "1.5e+300"},    {0.1 + 0.2, "0.30000000000000004"},
      {1718000000.123456, "1718000000.123456"},        {1700000000.0, "1700000000.0"},
      {5e-324, "5e-324"},    {1.0 / 3, "0.3333333333333333"},
  };
  for (const auto& [v, text] : cases) EXPECT_EQ(python_float(v), text) << text;
  EXPECT_EQ(python_float(std::numeric_limits<double>::infinity()), "inf");
  EXPECT_EQ(python_float(-std::numeric_limits<double>::infinity()), "-inf");
  EXPECT_EQ(python_float(std::nan("")), "nan");
}

TEST(PythonTextLiteral, StrOfLiteralEval) {
  const std::pair<const char*, const char*> cases[] = {
      {"1e-3", "0.001"},          {"0.9,0.99", "(0.9, 0.99)"},  {"(0.9, 0.999)", "(0.9, 0.999)"},
      {"[1, 2]", "[1, 2]"},       {"False", "False"},           {"'abc'", "abc"},
      {"('a', 1)", "('a', 1)"},   {"(1,)", "(1,)"},             {"+5", "5"},
      {"10", "10"},               {"-0", "0"},                  {"1e-30,1e-3", "(1e-30, 0.001)"},
      {"(\"it's\",)", "(\"it's\",)"}, {"((1,2),[3])", "((1, 2), [3])"}, {" None ", "None"},
  };
  for (const auto& [text, str] : cases) EXPECT_EQ(python_literal_str(text), str) << text;
  // No literal (kohya's literal_eval would stop on these): the text as given, trimmed.
  for (const char* text : {"007", "adamw", "1e-3)", "(1, 2", "true"}) EXPECT_EQ(python_literal_str(text), text);
}

TEST(PythonTextJson, DumpsWithPythonDefaults) {
  nlohmann::ordered_json j;
  j["b"] = 1;  // insertion order, not sorted
  j["a"] = nlohmann::ordered_json::array({1.0, nullptr, true, 1e-05, 0.16666666666666666});
  j["\xc3\xa9\"\\\n"] = "\xe6\x97\xa5\xe6\x9c\xac\xf0\x9f\x98\x80\x7f";  // é"\<LF> : 日本😀<DEL>
  j["e"] = nlohmann::ordered_json::object();
  j["f"] = nlohmann::ordered_json::array();
  EXPECT_EQ(python_json_dumps(j),
            R"({"b": 1, "a": [1.0, null, true, 1e-05, 0.16666666666666666], "\u00e9\"\\\n": )"
            R"("\u65e5\u672c\ud83d\ude00\u007f", "e": {}, "f": []})");
  EXPECT_EQ(python_json_dumps(nlohmann::ordered_json(std::nan(""))), "NaN");
  EXPECT_EQ(python_json_dumps(nlohmann::ordered_json(-std::numeric_limits<double>::infinity())), "-Infinity");
}

}  // namespace
