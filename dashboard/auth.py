"""The password gate of a served dashboard.

`prunescope serve --host 0.0.0.0` refuses to start without a password and hands it to the app in
`PRUNESCOPE_PASSWORD`. Each browser session then sees only a password form until it enters the right
one (remembered for that session). Without the variable (the loopback default) the gate is open.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time

import streamlit as st

PASSWORD_ENV = "PRUNESCOPE_PASSWORD"  # the same name as pruning_core.cli.serve.PASSWORD_ENV
_UNLOCKED = "_prunescope_unlocked"
WRONG_DELAY_S = 1.0  # slows guessing from one browser session


def _digest(text: str) -> bytes:
    # fixed-length digests, so compare_digest does not even reveal the password's length
    return hashlib.sha256(text.encode("utf-8")).digest()


def password_matches(entered: str, expected: str) -> bool:
    return hmac.compare_digest(_digest(entered), _digest(expected))


def require_password() -> None:
    """Stop the script with a password form unless no password is configured or this session entered it."""
    expected = os.environ.get(PASSWORD_ENV, "")
    if not expected or st.session_state.get(_UNLOCKED) == _digest(expected):
        return
    st.title("prunescope")
    st.caption("This dashboard is served to a network; enter the password your lecturer gave you.")
    with st.form("password_gate", clear_on_submit=True):  # the typed password is not kept in the page
        entered = st.text_input("Password", type="password", key="gate_password")
        submitted = st.form_submit_button("Enter", type="primary")
    if submitted:
        if password_matches(entered, expected):
            st.session_state[_UNLOCKED] = _digest(expected)
            st.rerun()
        time.sleep(WRONG_DELAY_S)
        st.error("Wrong password.")
    st.stop()
