"""The model: loading and checking model folders, the architecture map (Arch) that methods reach layers through, and the structured-pruned BERT class shipped with exports."""
