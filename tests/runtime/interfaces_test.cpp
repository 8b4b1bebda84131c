// Interfaces that evolve (hotswap::follows): clients built against an earlier version keep
// talking to a server that runs a later one, and a server changed down to an earlier version
// refuses what only the later one takes, with an error, never a crash.
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <hotswap/sys.hpp>

#include "fixture.hpp"

using namespace std::chrono_literals;

namespace inventory {
namespace v1 {
struct Item {
  std::string name;
  int count = 0;
};
}  // namespace v1
namespace v2 {
struct Item {
  std::string name;
  int count = 0;
  bool fragile = false;
};
}  // namespace v2
}  // namespace inventory

using ItemSchema =
    hotswap::schema<"Item", hotswap::version<1, inventory::v1::Item>, hotswap::version<2, inventory::v2::Item>>;
template <hotswap::listed_in<ItemSchema> T>
struct hotswap::schema_of<T> : ItemSchema {};
template <>
struct hotswap::step<inventory::v1::Item, inventory::v2::Item> {
  static constexpr auto rules = hotswap::rules{hotswap::added<"fragile">};
};
template <>
struct hotswap::step<inventory::v2::Item, inventory::v1::Item> {
  static constexpr auto rules = hotswap::rules{hotswap::removed<"fragile">};
};

namespace inventory {
struct Count {
  std::string name;
};
struct Lookup {
  std::string name;
};
struct Deactivate {
  std::string name;
};
struct Audit {};

// Version 1; version 2 adds Deactivate, takes Item as its version 2 and answers Lookup with it;
// version 3 takes Deactivate away.
using V1 = hotswap::interface<"Inventory", hotswap::cast_msg<v1::Item>, hotswap::call_msg<Count, int>,
                              hotswap::call_msg<Lookup, v1::Item>, hotswap::cast_msg<Audit>>;
using V2 = hotswap::interface<"Inventory", hotswap::follows<V1>, hotswap::cast_msg<v2::Item>,
                              hotswap::call_msg<Lookup, v2::Item>, hotswap::call_msg<Deactivate, bool>>;
using V3 = hotswap::interface<"Inventory", hotswap::follows<V2>, hotswap::removed_msg<Deactivate>>;

// -- the slots, at compile time --

static_assert(V1::vsn == 1 && V2::vsn == 2 && V3::vsn == 3);
static_assert(V2::size == 5 && V2::index_of<v2::Item> == 0 && V2::index_of<Count> == 1 && V2::index_of<Lookup> == 2 &&
              V2::index_of<Deactivate> == 4);
static_assert(V2::index_of<v1::Item> == V2::size, "the earlier version of a message is not sent with a V2 handle");
static_assert(V3::size == 5 && V3::index_of<Deactivate> == V3::size && V3::kinds::size == 4);
static_assert(hotswap::compatible<V1, V1> && hotswap::compatible<V1, V2> && hotswap::compatible<V1, V3> &&
              hotswap::compatible<V2, V3>);
static_assert(!hotswap::detail::follows_from<V2, V1> && !hotswap::detail::follows_from<V3, V2>);
static_assert(V3::lineage.size() == 3 && V3::lineage[0] == V1::fingerprint && V3::lineage[1] == V2::fingerprint);
// A version listed again whole is the same interface as one listing only what changed.
using V2Whole = hotswap::interface<"Inventory", hotswap::follows<V1>, hotswap::cast_msg<v2::Item>,
                                   hotswap::call_msg<Count, int>, hotswap::call_msg<Lookup, v2::Item>,
                                   hotswap::cast_msg<Audit>, hotswap::call_msg<Deactivate, bool>>;
static_assert(V2Whole::fingerprint == V2::fingerprint);

struct state {
  std::vector<v2::Item> items;
  int audits = 0;
};
int count_of(const state& s, const std::string& name) {
  int n = 0;
  for (const auto& item : s.items)
    if (item.name == name) n += item.count;
  return n;
}

struct StoreV1 {
  using interface = V1;
  static constexpr int vsn = 1;
  struct state {
    std::vector<v1::Item> items;
    int audits = 0;
  };
  using state_history = hotswap::state_history<hotswap::version<2, inventory::state>>;
  static state init() { return {}; }
  static state code_change(hotswap::from_vsn<2>, inventory::state later) {  // down from vsn 2
    state s{{}, later.audits};
    for (auto& item : later.items) s.items.push_back({std::move(item.name), item.count});
    return s;
  }
  static void handle_cast(v1::Item item, state& s) { s.items.push_back(std::move(item)); }
  static int handle_call(const Count& c, const state& s) {
    int n = 0;
    for (const auto& item : s.items)
      if (item.name == c.name) n += item.count;
    return n;
  }
  static v1::Item handle_call(const Lookup& l, const state& s) {
    for (const auto& item : s.items)
      if (item.name == l.name) return item;
    return {};
  }
  static void handle_cast(const Audit&, state& s) { ++s.audits; }
};

template <class Interface, int Vsn>
struct StoreLater {
  using interface = Interface;
  static constexpr int vsn = Vsn;
  using state = inventory::state;
  using state_history = hotswap::state_history<hotswap::version<1, StoreV1::state>>;
  static state init() { return {}; }
  static void handle_cast(v2::Item item, state& s) { s.items.push_back(std::move(item)); }
  static int handle_call(const Count& c, const state& s) { return count_of(s, c.name); }
  static v2::Item handle_call(const Lookup& l, const state& s) {
    for (const auto& item : s.items)
      if (item.name == l.name) return item;
    return {};
  }
  static bool handle_call(const Deactivate& d, state& s) requires(Vsn == 2) {
    const auto before = s.items.size();
    std::erase_if(s.items, [&](const v2::Item& item) { return item.name == d.name; });
    return s.items.size() != before;
  }
  static void handle_cast(const Audit&, state& s) { ++s.audits; }
  // The change of code from vsn 1 (its state: StoreV1::state) and down to it.
  static state code_change(hotswap::from_vsn<1>, StoreV1::state old) {
    state s{{}, old.audits};
    for (auto& item : old.items) s.items.push_back({std::move(item.name), item.count, false});
    return s;
  }
};
using StoreV2 = StoreLater<V2, 2>;
using StoreV3 = StoreLater<V3, 3>;
}  // namespace inventory

using namespace inventory;

TEST_CASE(
    "a handle of an earlier interface version calls a server of a later one: its messages migrated up, "
    "its replies down",
    "[interfaces]") {
  auto server = hotswap::start<StoreV2>().value();
  auto old = hotswap::server_ref<V1>::from(server);
  REQUIRE(old);
  CHECK(hotswap::cast(*old, v1::Item{"apple", 3}));  // an Item of version 1, taken as version 2
  CHECK(hotswap::cast(server, v2::Item{"apple", 2, true}));
  CHECK(hotswap::call(*old, Count{"apple"}).value() == 5);
  const v1::Item looked_up = hotswap::call(*old, Lookup{"apple"}).value();  // a version 2 reply, migrated down
  CHECK(looked_up.name == "apple");
  CHECK(looked_up.count == 3);
  CHECK(hotswap::call(server, Lookup{"apple"}).value().fragile == false);
  CHECK(hotswap::call(server, Deactivate{"apple"}).value());
  CHECK(hotswap::call(*old, Count{"apple"}).value() == 0);
  CHECK(hotswap::stop(server));
}

TEST_CASE("a handle of a later interface version is had only from a server that runs it, or a later one",
          "[interfaces]") {
  auto server = hotswap::start<StoreV1>().value();
  CHECK(hotswap::server_ref<V1>::from(server));
  CHECK_FALSE(hotswap::server_ref<V2>::from(server));
  const auto typed = hotswap::server_ref<V2>::of(server);
  REQUIRE_FALSE(typed);
  CHECK(typed.error().code == hotswap::errc::wrong_interface);
  CHECK(typed.error().what ==
        "server " + std::to_string(server.id()) + " runs Inventory, not Inventory version 2 or a later version of it");
  auto started = hotswap::start<V2>(hotswap::table_of<StoreV1>, nullptr);
  REQUIRE_FALSE(started);
  CHECK(started.error().code == hotswap::errc::wrong_interface);
  CHECK(started.error().what == "inventory::StoreV1 implements Inventory, not Inventory version 2 or a later version");
  auto later = hotswap::start<V1>(hotswap::table_of<StoreV3>, nullptr);  // a V1 handle on a version 3 server
  REQUIRE(later);
  CHECK(hotswap::server_ref<V2>::from(*later));
  CHECK(hotswap::call(*later, Count{"pear"}).value() == 0);
  CHECK(hotswap::stop(server));
  CHECK(hotswap::stop(*later));
}

TEST_CASE(
    "a server changes code up and down its interface's versions; what only the later version takes is "
    "refused after the change down, with an error",
    "[interfaces]") {
  auto server = hotswap::start<StoreV1>().value();
  CHECK(hotswap::cast(server, v1::Item{"plum", 4}));
  REQUIRE(hotswap::sys::suspend(server));
  REQUIRE(hotswap::sys::change_code(server, hotswap::table_of<StoreV2>, 1));
  REQUIRE(hotswap::sys::resume(server));
  auto later = hotswap::server_ref<V2>::from(server);
  REQUIRE(later);
  CHECK(hotswap::call(*later, Lookup{"plum"}).value().count == 4);

  // Down again: a later handle's messages, queued while it was suspended and sent after.
  REQUIRE(hotswap::sys::suspend(server));
  CHECK(hotswap::cast(*later, v2::Item{"fig", 1, true}));  // boxed: freed by its own box
  auto queued = hotswap::send_request(*later, Deactivate{"plum"});
  REQUIRE(hotswap::sys::change_code(server, hotswap::table_of<StoreV1>, 2));
  REQUIRE(hotswap::sys::resume(server));
  const auto refused = queued.wait();
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == hotswap::errc::wrong_interface);
  CHECK(refused.error().what ==
        "a message of version 2 of Inventory, and the server runs version 1 (inventory::StoreV1)");
  const auto after = hotswap::call(*later, Deactivate{"plum"});  // sent after the change
  REQUIRE_FALSE(after);
  CHECK(after.error().code == hotswap::errc::wrong_interface);
  CHECK_FALSE(hotswap::cast(*later, v2::Item{"fig", 1, true}));  // refused before it is sent
  CHECK_FALSE(hotswap::server_ref<V2>::from(server));
  CHECK(hotswap::call(server, Count{"plum"}).value() == 4);  // the state went down, and it serves
  CHECK(hotswap::call(server, Count{"fig"}).value() == 0);
  CHECK(hotswap::call(*later, Count{"plum"}).value() == 4);  // what both versions take still works
  CHECK(hotswap::stop(server));
}

TEST_CASE("a message a later version removed is refused to the clients that still send it", "[interfaces]") {
  auto server = hotswap::start<StoreV3>().value();
  auto old = *hotswap::server_ref<V2>::from(server);
  const auto refused = hotswap::call(old, Deactivate{"x"});
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == hotswap::errc::wrong_interface);
  CHECK(refused.error().what == "inventory::Deactivate is not taken since version 3 of Inventory");
  CHECK(hotswap::call(old, Count{"x"}).value() == 0);  // the server lives on
  CHECK(hotswap::stop(server));
}

namespace inventory {
using Other = hotswap::interface<"Inventory", hotswap::cast_msg<v1::Item>, hotswap::call_msg<Count, int>>;
struct Unrelated {
  using interface = Other;
  static constexpr int vsn = 2;
  struct state {};
  static state init() { return {}; }
  static void handle_cast(const v1::Item&, state&) {}
  static int handle_call(const Count&, const state&) { return 0; }
};
}  // namespace inventory

TEST_CASE("a change of code to an interface that does not follow the server's is refused, saying so", "[interfaces]") {
  auto server = hotswap::start<StoreV1>().value();
  REQUIRE(hotswap::sys::suspend(server));
  const auto changed = hotswap::sys::change_code(server, hotswap::table_of<Unrelated>, 1);
  REQUIRE_FALSE(changed);
  CHECK(changed.error().code == hotswap::errc::wrong_interface);
  CHECK(changed.error().what ==
        "inventory::Unrelated implements Inventory, the server Inventory: neither is a declared later version of the "
        "other");
  REQUIRE(hotswap::sys::resume(server));
  CHECK(hotswap::stop(server));
}
