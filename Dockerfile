# docqa, CPU only: the API (`docqa serve`) and the workers (`docqa worker`) run this image.
#   docker compose up --scale worker=2        (see docker-compose.yml and README "Serving")
FROM python:3.11-slim-bookworm

# llama-cpp-python compiles llama.cpp: portable flags, AMX off (it crashes on AMX CPUs), the
# same as the Makefile's.
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
ENV CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
    -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF" \
    POETRY_VIRTUALENVS_CREATE=false \
    PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1

WORKDIR /app
RUN pip install poetry==2.5.1
# The CPU-only torch wheel poetry.lock pins by hash (PyPI's default build is CUDA, ~3 GB).
RUN mkdir vendor && pip download --no-deps --dest vendor \
    --index-url https://download.pytorch.org/whl/cpu torch==2.13.0+cpu
COPY pyproject.toml poetry.lock README.md ./
COPY docqa ./docqa
RUN poetry install --only main && pip uninstall -y poetry
COPY config.yml ingest.py main.py ./

# data/, vectorstore/, state/ and models/ are volumes (docker-compose.yml); uploads go to
# data/uploads, kept conversations to state/ (only its owner may open it).
RUN useradd --create-home --uid 1000 docqa && mkdir -p data vectorstore models \
    && mkdir -m 700 state && chown docqa data vectorstore state
USER docqa
EXPOSE 8000
CMD ["docqa", "serve", "--host", "0.0.0.0", "--port", "8000"]
