# lmstrix: the CLI and the batch runner in a small image.
#
#   docker build -t lmstrix .
#   docker run --rm --network host lmstrix list                    # a server on this host
#   docker run --rm -v "$PWD:/data" --network host lmstrix \
#       batch /data/questions.jsonl -o /data/answers.jsonl --model qwen/qwen3-4b
#
# The entry point is the lite CLI (`python -m lmstrix`): standard library only, so the
# image holds Python and lmstrix and nothing else. The wheel is built in a first stage;
# the final stage installs it with no compiler, no build tools and no pip cache, and runs
# as an unprivileged user. The registry and settings live in /home/lmstrix/.lmstrix
# (LMSTRIX_HOME): mount a volume there to keep them.

ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml setup.cfg MANIFEST.in README.md CHANGELOG.md LICENSE ./
COPY lmstrix ./lmstrix
RUN python -m pip install --no-cache-dir --disable-pip-version-check build==1.2.2.post1 \
    && python -m build --wheel --outdir /wheels .

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="lmstrix" \
      org.opencontainers.image.description="Find the real context limits of LM Studio models, and use them" \
      org.opencontainers.image.licenses="MIT"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LMSTRIX_HOME=/home/lmstrix/.lmstrix
COPY --from=build /wheels /tmp/wheels
RUN python -m pip install --no-cache-dir --disable-pip-version-check --no-compile /tmp/wheels/*.whl \
    && rm -rf /tmp/wheels \
    && python -m pip uninstall --yes --disable-pip-version-check pip setuptools wheel \
    && useradd --create-home --uid 10001 --user-group lmstrix
USER 10001:10001
WORKDIR /home/lmstrix
VOLUME ["/home/lmstrix/.lmstrix"]
ENTRYPOINT ["python", "-m", "lmstrix"]
CMD ["--help"]
