# Stratus: `make run` starts a small cloud of real QEMU guests; `make test` builds and runs every test.
SWIFT ?= swift
DATA ?= .stratus
BIN := .build/debug/stratus
# What `make run` starts serve with, and where it puts the tiny image first (project acme's
# bucket images, which examples/images.yaml names); MakeRunTests uses these same flags.
SERVE_FLAGS := --hypervisor embed --apply examples/
IMAGE_FLAGS := --upload s3://images/tiny/ -p acme

.PHONY: run test bench install-deps build build-tests release clean

## run: install what is missing, build, build the tiny guest image (once) and put it into the
## object store of ./$(DATA), then start the controller there with real QEMU guests (KVM if it
## works, else TCG) and apply examples/
run: install-deps build
	$(BIN) image build-tiny --data-dir $(DATA) $(IMAGE_FLAGS)
	$(BIN) serve --data-dir $(DATA) $(SERVE_FLAGS)

## test: install what is missing, build once (with tests), run every test
test: install-deps build-tests
	$(SWIFT) test --skip-build

## bench: release build, then the benchmarks of BENCHMARKS.md
bench: install-deps release
	$(SWIFT) build -c release --product stratus-bench
	python3 bench/apply_diff.py --bin .build/release/stratus
	python3 bench/gitsync.py --bin .build/release/stratus
	python3 bench/dashboard.py --bin .build/release/stratus
	.build/release/stratus-bench compute 1000 2>/dev/null
	.build/release/stratus-bench identity 10000
	python3 bench/ec2_vs_moto.py --bin .build/release/stratus
	python3 bench/ec2_load.py --bin .build/release/stratus --load .build/release/stratus-bench
	python3 bench/s3_compare.py --bin .build/release/stratus --load .build/release/stratus-bench
	.build/release/stratus-bench agents --bin .build/release/stratus 100 10000
	@if [ "$$(id -u)" = 0 ]; then .build/release/stratus-bench network 200 1000 2>/dev/null && .build/release/stratus-bench volumes 100 && .build/release/stratus-bench aoe-read 256 9000; \
	else echo "network and volume benchmarks skipped: they need root (network namespaces, vblade); run make bench as root"; fi

## release: the optimized build (some Swift 6 concurrency mistakes only show here)
release:
	$(SWIFT) build -c release --product stratus

install-deps:
	@scripts/install-deps.sh

build:
	$(SWIFT) build --product stratus

build-tests:
	$(SWIFT) build --build-tests

clean:
	rm -rf .build
