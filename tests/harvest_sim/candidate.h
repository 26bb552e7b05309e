// A place to try a change to the harvest defaults: `harvest_sim
// --candidate` prints it in a column beside HarvestConfig::Defaults() and
// checks it against issue 13's bar. Edit it locally to tune; what ships is
// HarvestConfig::Defaults(), which harvest_sim_test's DefaultsMeetTheBar
// checks.
//
// Thread safety: a pure function.
#ifndef RCPTGUARD_TESTS_HARVEST_SIM_CANDIDATE_H_
#define RCPTGUARD_TESTS_HARVEST_SIM_CANDIDATE_H_

#include "server/harvest/harvest.h"

namespace rcptguard::harvest_sim {

inline harvest::HarvestConfig CandidateConfig() {
  return harvest::HarvestConfig::Defaults();
}

}  // namespace rcptguard::harvest_sim

#endif  // RCPTGUARD_TESTS_HARVEST_SIM_CANDIDATE_H_
