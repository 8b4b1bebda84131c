// A 60-field struct in two versions, for migrations_test.cpp: f07 is renamed g07, f12 widens
// from int to long, f59 is removed and h60 added.
#pragma once

#include <optional>
#include <string>

namespace wide {
namespace v1 {
struct Record {
  int f00;
  long f01;
  double f02;
  std::string f03;
  bool f04;
  std::optional<int> f05;
  int f06;
  long f07;
  double f08;
  std::string f09;
  bool f10;
  std::optional<int> f11;
  int f12;
  long f13;
  double f14;
  std::string f15;
  bool f16;
  std::optional<int> f17;
  int f18;
  long f19;
  double f20;
  std::string f21;
  bool f22;
  std::optional<int> f23;
  int f24;
  long f25;
  double f26;
  std::string f27;
  bool f28;
  std::optional<int> f29;
  int f30;
  long f31;
  double f32;
  std::string f33;
  bool f34;
  std::optional<int> f35;
  int f36;
  long f37;
  double f38;
  std::string f39;
  bool f40;
  std::optional<int> f41;
  int f42;
  long f43;
  double f44;
  std::string f45;
  bool f46;
  std::optional<int> f47;
  int f48;
  long f49;
  double f50;
  std::string f51;
  bool f52;
  std::optional<int> f53;
  int f54;
  long f55;
  double f56;
  std::string f57;
  bool f58;
  std::optional<int> f59;
};
inline Record sample() {
  return Record{0,     1L,    2.5,  "s3",  false, 5,    6,     7L,    8.5,  "s9",  false, 11,   12,    13L,   14.5,
                "s15", false, 17,   18,    19L,   20.5, "s21", false, 23,   24,    25L,   26.5, "s27", false, 29,
                30,    31L,   32.5, "s33", false, 35,   36,    37L,   38.5, "s39", false, 41,   42,    43L,   44.5,
                "s45", false, 47,   48,    49L,   50.5, "s51", false, 53,   54,    55L,   56.5, "s57", false, 59};
}
}  // namespace v1
namespace v2 {
struct Record {
  int f00;
  long f01;
  double f02;
  std::string f03;
  bool f04;
  std::optional<int> f05;
  int f06;
  long g07;
  double f08;
  std::string f09;
  bool f10;
  std::optional<int> f11;
  long f12;
  long f13;
  double f14;
  std::string f15;
  bool f16;
  std::optional<int> f17;
  int f18;
  long f19;
  double f20;
  std::string f21;
  bool f22;
  std::optional<int> f23;
  int f24;
  long f25;
  double f26;
  std::string f27;
  bool f28;
  std::optional<int> f29;
  int f30;
  long f31;
  double f32;
  std::string f33;
  bool f34;
  std::optional<int> f35;
  int f36;
  long f37;
  double f38;
  std::string f39;
  bool f40;
  std::optional<int> f41;
  int f42;
  long f43;
  double f44;
  std::string f45;
  bool f46;
  std::optional<int> f47;
  int f48;
  long f49;
  double f50;
  std::string f51;
  bool f52;
  std::optional<int> f53;
  int f54;
  long f55;
  double f56;
  std::string f57;
  bool f58;
  int h60 = -1;
};
}  // namespace v2
}  // namespace wide
