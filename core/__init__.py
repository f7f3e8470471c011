"""LabelBridge core: all logic, no Streamlit."""
