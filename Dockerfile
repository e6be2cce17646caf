# Multi-stage: build with the Rust toolchain, run on a slim base as a non-root user.
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin llm-router

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --create-home --home-dir /app router
WORKDIR /app
COPY --from=build /src/target/release/llm-router /usr/local/bin/llm-router
COPY prompts/ prompts/
COPY resources/ resources/
ENV LLM_ROUTER_SERVER_HOST=0.0.0.0 \
    LLM_ROUTER_SERVER_PORT=8080 \
    LLM_ROUTER_MODELS_CONFIG=resources/configs/models-config.json \
    LLM_ROUTER_PROMPTS_DIR=prompts
EXPOSE 8080
USER router
CMD ["llm-router"]
