// Health (server/service/generic_calls.h): the status both servers answer
// from, and what Watch streams are told.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/service/generic_calls.h"

namespace rcptguard::service {
namespace {

using ::testing::ElementsAre;

// Records what a Watch stream would be told.
class RecordingWatcher final : public Health::Watcher {
 public:
  void Push(bool serving) override {
    told.push_back(serving ? "SERVING" : "NOT_SERVING");
  }
  void End() override { told.push_back("end"); }
  std::vector<std::string> told;
};

TEST(HealthTest, WatchersAreToldTheStatusThenEachChange) {
  Health health;
  RecordingWatcher w;
  health.Add(&w);
  health.Set(true);
  health.Set(true);  // no change, nothing told
  health.Set(false);
  health.Remove(&w);
  health.Set(true);  // removed: not told
  EXPECT_THAT(w.told, ElementsAre("NOT_SERVING", "SERVING", "NOT_SERVING"));
  EXPECT_TRUE(health.serving());
}

// Once shutting down, a load that completes (Set(true)) must not turn the
// server SERVING again while load balancers drain it.
TEST(HealthTest, ShutDownIsNotServingForGood) {
  Health health;
  RecordingWatcher w;
  health.Set(true);
  health.Add(&w);
  health.ShutDown();
  health.Set(true);
  EXPECT_FALSE(health.serving());
  health.EndWatches();
  RecordingWatcher late;
  health.Add(&late);  // a Watch that starts after the end ends at once
  EXPECT_THAT(w.told, ElementsAre("SERVING", "NOT_SERVING", "end"));
  EXPECT_THAT(late.told, ElementsAre("NOT_SERVING", "end"));
  health.Remove(&w);
  health.Remove(&late);
}

TEST(HealthTest, KnowsTheOverallStatusAndRecipientValidation) {
  EXPECT_TRUE(Health::Knows(""));
  EXPECT_TRUE(Health::Knows("rcptguard.v1.RecipientValidation"));
  EXPECT_FALSE(Health::Knows("rcptguard.v1.Admin"));
  EXPECT_FALSE(Health::Knows("no.such.Service"));
}

}  // namespace
}  // namespace rcptguard::service
