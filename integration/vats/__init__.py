"""PBX routing settings: the operator document, its rules, the editable file, plans and views."""
