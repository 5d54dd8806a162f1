"""The Gradio face of Banana Studio: one module per tab; all logic lives in ``rag``."""
