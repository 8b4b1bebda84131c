// The Leaderboard as a module: a server release anemone 4 starts (and a rollback to 3 stops).
#include <hotswap/modules.hpp>

#include "../anemone/servers.hpp"

HOTSWAP_MODULE("anemone.leaderboard", anemone::LeaderboardV1);
