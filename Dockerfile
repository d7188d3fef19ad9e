# safegate container image.
#
#   docker build -t safegate:dev .
#   docker run --rm safegate:dev --help
#
# Build stage: the Rust toolchain pinned to the project's rust-version. No system protoc
# (build.rs uses protoc-bin-vendored), no OpenSSL (rustls + ring) and no libsqlite3
# (SQLite is bundled); the slim image's gcc builds ring and SQLite.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# The query macros (if any are added) must use the committed .sqlx/ data, never a live
# database reached from inside the build.
ENV SQLX_OFFLINE=true \
    CARGO_TERM_COLOR=never

# 1. Dependencies only, cached until the manifest, lock file or compile-time inputs
#    change. build.rs compiles proto/, and sqlx::migrate!() embeds migrations/ at compile
#    time, so both are part of this layer. The crate's own sources are placeholders here,
#    and so is each [[bench]] the manifest names (cargo refuses a manifest whose explicit
#    bench file is missing, even when building only the binary).
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto ./proto
COPY migrations ./migrations
RUN mkdir -p src benches \
 && echo 'fn main() {}' > src/main.rs \
 && : > src/lib.rs \
 && for bench in $(sed -n '/^\[\[bench\]\]/,/^name/s/^name *= *"\(.*\)"/\1/p' Cargo.toml); do \
      echo 'fn main() {}' > "benches/$bench.rs"; \
    done \
 && cargo build --release --locked --bin safegate \
 && rm -rf src benches

# 2. The real sources (.dockerignore keeps target/, data and VCS files out). The touch
#    makes cargo rebuild the crate even when COPY keeps source mtimes older than the
#    placeholder build above.
COPY . .
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked --bin safegate \
 && cp target/release/safegate /usr/local/bin/safegate

# Runtime stage: same Debian release as the build stage, so the glibc matches.
FROM debian:bookworm-slim AS runtime
# ca-certificates tracks the Debian release; pinning its exact version would only break
# the build at the next security update.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# Fixed non-root uid/gid 10001, so volume ownership is predictable across rebuilds and
# USER is numeric (runAsNonRoot-style checks cannot resolve names).
RUN groupadd --system --gid 10001 safegate \
 && useradd --system --uid 10001 --gid safegate \
      --home-dir /app --no-create-home --shell /usr/sbin/nologin safegate

COPY --from=build /usr/local/bin/safegate /usr/local/bin/safegate
COPY --chown=root:root policies /app/policies

# /app/safegate-data: the default data dir (SQLite, PKI for `demo`), relative to WORKDIR.
# /pki: owned by the user so an empty named volume mounted there (docker-compose.yml)
# starts out writable by it: Docker copies the mount point's ownership into a new volume.
RUN mkdir -p /app/safegate-data /pki \
 && chown safegate:safegate /app/safegate-data /pki

WORKDIR /app
USER 10001:10001
# The binary's default is 127.0.0.1:50051, unreachable from outside a container.
ENV SAFEGATE_LISTEN_ADDR=0.0.0.0:50051
EXPOSE 50051
ENTRYPOINT ["safegate"]
CMD ["serve"]
