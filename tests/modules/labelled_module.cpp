// labelled::Labelled<LABELLED_VERSION> as a module.
#include <hotswap/modules.hpp>

#include "labelled.hpp"

HOTSWAP_MODULE("labelled", labelled::Labelled<LABELLED_VERSION>);
