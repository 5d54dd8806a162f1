# Banana Studio web app. Used by docker-compose.yml (service "banana"); runs alone too:
#   docker build -t banana-studio .
#   docker run -p 127.0.0.1:7860:7860 -v banana-data:/app/data banana-studio
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GRADIO_ANALYTICS_ENABLED=False \
    BANANA_DATA_DIR=/app/data \
    HF_HOME=/cache/huggingface \
    XDG_CACHE_HOME=/cache

WORKDIR /app

# torch/torchvision are pinned in requirements.txt. From PyPI on x86_64 Linux they are the
# CUDA builds (several GB). For a smaller CPU-only image, point pip at PyTorch's CPU wheel
# index, which serves the same versions as "+cpu" wheels:
#   docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu .
#   (or: TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu docker compose build)
ARG TORCH_INDEX_URL=
COPY requirements.txt ./
RUN pip install ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} -r requirements.txt

# Copy only what the app needs: data/, .env files and the git history stay out of the image.
COPY app.py ./
COPY rag/ ./rag/
COPY ui/ ./ui/
COPY assets/ ./assets/

# Run unprivileged. The volume mount points exist and belong to that user, so fresh named
# volumes (data, model cache) start out writable by it.
RUN useradd --create-home --uid 1000 banana \
    && mkdir -p /app/data /cache \
    && chown banana:banana /app/data /cache
USER banana

VOLUME ["/app/data", "/cache"]
EXPOSE 7860

# The first start may download CLIP weights into /cache: give it time before failures count.
HEALTHCHECK --interval=30s --timeout=10s --start-period=180s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7860/', timeout=8)"]

CMD ["python", "app.py", "--host", "0.0.0.0", "--port", "7860"]
