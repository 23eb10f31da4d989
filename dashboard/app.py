"""prunescope dashboard entry point: `streamlit run dashboard/app.py`."""

import streamlit as st

from dashboard import presentation
from dashboard.auth import require_password
from dashboard.common import jobs_badge

st.set_page_config(page_title="prunescope", page_icon=":material/content_cut:", layout="wide")
require_password()  # a served page shows only the password form until the session has entered it

presentation.install()  # every chart through presentation.style while this session presents
presenting = presentation.sidebar_toggle()
demo = st.Page("demo_page.py", title="Demo path", icon=":material/slideshow:", default=presenting)
prune = st.Page("prune_page.py", title="Prune", icon=":material/content_cut:", default=not presenting)
pages = [*([demo, prune] if presenting else [prune, demo]),
         st.Page("compare_page.py", title="Compare", icon=":material/show_chart:"),
         st.Page("robustness_page.py", title="Robustness", icon=":material/shield:"),
         st.Page("experiments_page.py", title="Experiments", icon=":material/table_view:"),
         st.Page("diff_page.py", title="Run vs run", icon=":material/compare_arrows:"),
         st.Page("jobs_page.py", title="Jobs", icon=":material/pending_actions:"),
         st.Page("learn_page.py", title="Learn", icon=":material/school:")]
nav = st.navigation(pages)
st.sidebar.caption(jobs_badge(), help="the prunes, attacks and other long work queued or running on this server "
                                      "(all sessions): the Jobs page lists them")
nav.run()
