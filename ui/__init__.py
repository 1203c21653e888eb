"""The Streamlit web app: presentation only; retrieval, scores and answers come from ``rag``."""
