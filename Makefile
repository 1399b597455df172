# Kizuki — build, test, lint and benchmark entry points. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
KIZUKI := $(TARGET_DIR)/release/kizuki
KIZUKI_GEN := $(TARGET_DIR)/release/kizuki-gen
SHARED_PCAPS := $(CURDIR)/../shared/pcaps
DEMO_PCAP := pcaps/demo.pcap
DEMO_OUT := out/demo

# nextest when it is installed (it is on this machine kind), plain cargo test otherwise.
HAVE_NEXTEST := $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo yes)

.PHONY: help deps build run test conformance check-shared lint bench loopback-pcaps clean fuzz stress rules-test dashboards eval-beacon

help:
	@echo "make deps         install Debian packages the build/tests/bench need (skips apt if all present)"
	@echo "make build        cargo build --release (whole workspace: kizuki + kizuki-gen)"
	@echo "make run          deps + build, then replay $(DEMO_PCAP) into $(DEMO_OUT)/ with the default config"
	@echo "make test         deps, build kizuki, run every workspace test (incl. conformance)"
	@echo "make conformance  only the conformance tests (needs ../shared/pcaps; fails without under CI=true)"
	@echo "make lint         cargo fmt --check + cargo clippy --all-targets -D warnings"
	@echo "make bench        throughput vs tcpdump/softflowd, peak RSS, bytes per flow (scripts/bench.sh)"
	@echo "make eval-beacon  beacon detector recall/precision on the labeled corpus (scripts/eval-beacon.sh)"
	@echo "make rules-test   promtool check/test of dashboards/rules (also run by make test, in tests/tests/dashboards.rs)"
	@echo "make dashboards   regenerate dashboards/grafana/*.json from dashboards/generate.py"
	@echo "make loopback-pcaps  re-record pcaps/lo-*.pcap with dnsmasq/dig/curl (root)"
	@echo "make fuzz         cargo-fuzz every target for FUZZ_SECONDS (default 60) each; crashes -> fuzz/regressions/"
	@echo "make stress       10 M-packet SYN / water-torture / fragment floods with capped tables: RSS, evictions, legit records"
	@echo "make clean        cargo clean, remove out/ and bench-data/"

deps:
	@bash scripts/deps.sh

build:
	$(CARGO) build --release

run: deps build
	@if [ ! -f $(DEMO_PCAP) ]; then \
	  echo "run: $(DEMO_PCAP) missing, generating it"; \
	  $(KIZUKI_GEN) demo --out $(DEMO_PCAP); \
	fi
	rm -rf $(DEMO_OUT)
	$(KIZUKI) replay --out $(DEMO_OUT) $(DEMO_PCAP)
	@echo
	@echo "events written to $(DEMO_OUT)/eve.json ($$(wc -l < $(DEMO_OUT)/eve.json) lines)"

# Under CI the shared Zeek traces are mandatory: a missing ../shared/pcaps must fail, not skip.
check-shared:
	@if [ ! -d "$(SHARED_PCAPS)" ]; then \
	  if [ "$${CI:-}" = "true" ]; then \
	    echo "error: $(SHARED_PCAPS) is missing (CI=true: conformance tests cannot be skipped)" >&2; \
	    exit 1; \
	  else \
	    echo "warning: $(SHARED_PCAPS) is missing; conformance tests will skip" >&2; \
	  fi; \
	fi

test: deps check-shared
	$(CARGO) build --release -p kizuki --bin kizuki
ifeq ($(HAVE_NEXTEST),yes)
	KIZUKI_BIN=$(KIZUKI) $(CARGO) nextest run --workspace --release --no-fail-fast --no-tests=warn
else
	rc=0; KIZUKI_BIN=$(KIZUKI) $(CARGO) test --workspace --release --no-fail-fast 2>&1 \
	  | tee $(TARGET_DIR)/test.log || rc=$$?; \
	awk '/^test result:/ { p += $$4; f += $$6; i += $$8 } \
	  END { printf "Summary: %d passed, %d failed, %d ignored\n", p, f, i }' $(TARGET_DIR)/test.log; \
	exit $$rc
endif

conformance: check-shared
	$(CARGO) build --release -p kizuki --bin kizuki
	KIZUKI_BIN=$(KIZUKI) $(CARGO) test --release -p kizuki-tests --test conformance

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

bench: deps build
	bash scripts/bench.sh

eval-beacon:
	bash scripts/eval-beacon.sh

rules-test:
	promtool check rules dashboards/rules/kizuki.rules.yml
	cd dashboards/rules && promtool test rules kizuki.rules_test.yml
	promtool check config dashboards/examples/prometheus.yml

dashboards:
	python3 dashboards/generate.py

loopback-pcaps: deps
	bash scripts/capture-loopback.sh

fuzz:
	FUZZ_SECONDS=$${FUZZ_SECONDS:-60} bash scripts/fuzz.sh

stress: deps
	bash scripts/stress.sh

clean:
	$(CARGO) clean
	rm -rf out bench-data
