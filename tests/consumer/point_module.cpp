#include "point.hpp"

HOTSWAP_MODULE("point", PointV2);
