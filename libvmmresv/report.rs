//! The host capacity report (JSON) for operators and Triton CNAPI/VMAPI.
