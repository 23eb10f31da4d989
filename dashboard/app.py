"""prunescope dashboard entry point: `streamlit run dashboard/app.py`."""

import streamlit as st

st.set_page_config(page_title="prunescope", page_icon="✂️", layout="wide")

pages = [st.Page("prune_page.py", title="Prune", icon="✂️", default=True),
         st.Page("compare_page.py", title="Compare", icon="📈"),
         st.Page("experiments_page.py", title="Experiments", icon="🗂️"),
         st.Page("learn_page.py", title="Learn", icon="🎓")]
st.navigation(pages).run()
