# Release targets for a project that keeps its artifacts in S3 with deltaglider.
# Include it from your Makefile (`include release.mk`) or run it directly:
#
#   make -f release.mk release-upload   RELEASE_VERSION=1.2.3      # dist/ -> s3://…/1.2.3/
#   make -f release.mk release-download RELEASE_VERSION=1.2.3      # s3://…/1.2.3/ -> downloads/1.2.3/
#   make -f release.mk release-verify   RELEASE_VERSION=1.2.3      # every stored file restores to its SHA-256
#
# Credentials and endpoint come from the environment (AWS_ACCESS_KEY_ID, AWS_PROFILE,
# AWS_ENDPOINT_URL…), as for the aws CLI.

DELTAGLIDER      ?= deltaglider
RELEASE_BUCKET   ?= s3://releases/$(notdir $(CURDIR))
RELEASE_VERSION  ?= $(shell git describe --tags --always 2>/dev/null)
RELEASE_DIST     ?= dist
RELEASE_DOWNLOAD ?= downloads
RELEASE_URL       = $(RELEASE_BUCKET)/$(RELEASE_VERSION)/

.PHONY: release-upload release-download release-verify release-check-version

release-check-version:
	@test -n "$(RELEASE_VERSION)" || { echo "error: set RELEASE_VERSION (no git tag found)"; exit 2; }

# Upload every file under $(RELEASE_DIST) to one folder per version; each is stored as a delta
# against the earlier versions' files of the same series where that pays.
release-upload: release-check-version
	@test -d "$(RELEASE_DIST)" || { echo "error: $(RELEASE_DIST)/ does not exist; build first"; exit 2; }
	$(DELTAGLIDER) sync --no-progress "$(RELEASE_DIST)/" "$(RELEASE_URL)"

# Download a version's files, byte-identical to what was uploaded (each checked on the way).
release-download: release-check-version
	$(DELTAGLIDER) sync --no-progress "$(RELEASE_URL)" "$(RELEASE_DOWNLOAD)/$(RELEASE_VERSION)/"

# Rebuild every stored file of a version and check it against its recorded SHA-256.
release-verify: release-check-version
	$(DELTAGLIDER) verify --recursive "$(RELEASE_URL)"
