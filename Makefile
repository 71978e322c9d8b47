# arcvm - top-level entry points. `make` builds, `make test` runs every
# test (unit, sanitizers, end-to-end under KVM), `make demo` boots a guest.
BUILD      ?= build
BUILD_SAN  ?= build-san
MESON_OPTS ?=

.PHONY: all deps test unit host-tests unit-san e2e demo bench bench-snapshot bench-fs clean format

all: $(BUILD)/build.ninja
	ninja -C $(BUILD)

deps:
	@scripts/install-deps.sh

$(BUILD)/build.ninja: | deps
	meson setup $(BUILD) $(MESON_OPTS)

$(BUILD_SAN)/build.ninja: | deps
	meson setup $(BUILD_SAN) -Db_sanitize=address,undefined -Db_lundef=false $(MESON_OPTS)

unit: all
	meson test -C $(BUILD) --suite unit --print-errorlogs

# Tests that need root on a real host (not a chroot): the jailer. Skipping
# is a failure here.
host-tests: all
	ARCVM_JAILER_REQUIRED=1 meson test -C $(BUILD) --suite host --print-errorlogs

# The unit tests again under AddressSanitizer and UndefinedBehaviorSanitizer;
# any report fails the run.
unit-san: $(BUILD_SAN)/build.ninja
	ninja -C $(BUILD_SAN)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		meson test -C $(BUILD_SAN) --suite unit --print-errorlogs

e2e: all
	tests/e2e/run.sh

test: unit host-tests unit-san e2e

demo: all
	tests/demo.sh

bench: all
	bench/boot.sh

# Snapshot create/restore against cold boots and QEMU migration files.
bench-snapshot: all
	bench/snapshot.sh

# Shared directories: arcvm's virtio-fs against QEMU's virtio-9p.
bench-fs: all
	bench/fs.sh

clean:
	rm -rf $(BUILD) $(BUILD_SAN)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

# libFuzzer targets (clang) for the virtqueue walker and the virtio-mmio
# register file: built in build-fuzz/, each run for FUZZ_SECONDS; any finding
# fails (tests/fuzz/run.sh, which says how to reproduce one).
FUZZ_SECONDS ?= 60
.PHONY: fuzz
fuzz: | deps
	tests/fuzz/run.sh $(FUZZ_SECONDS)
