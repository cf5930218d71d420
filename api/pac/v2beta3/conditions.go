package v2beta3

// ReadyCondition is the condition type that every kind of this group reports
// first: whether the object is valid and in use.
const ReadyCondition = "Ready"

// Reasons of a Policy's Ready condition.
const (
	// PolicyCompiledReason: the code compiled and the parameters are valid,
	// so the policy is evaluated in its active modes.
	PolicyCompiledReason = "Compiled"

	// PolicyCompileErrorReason: the Rego code does not compile; the message
	// has the compiler's error and line. The policy checks nothing until fixed.
	PolicyCompileErrorReason = "CompileError"

	// PolicyMissingViolationRuleReason: the module defines no "violation" rule.
	PolicyMissingViolationRuleReason = "MissingViolationRule"

	// PolicyInvalidParametersReason: a parameter value does not match its
	// declared type, or a required parameter has no value.
	PolicyInvalidParametersReason = "InvalidParameters"

	// PolicyProviderNotEvaluatedReason: the policy is for a provider whose
	// objects this operator does not receive (terraform).
	PolicyProviderNotEvaluatedReason = "ProviderNotEvaluated"
)

// Reasons of a PolicyConfig's Ready condition.
const (
	// PolicyConfigValidReason: every policy in config exists and declares
	// every parameter set for it, with a value of the declared type.
	PolicyConfigValidReason = "Valid"

	// PolicyConfigPolicyNotFoundReason: config names a policy that does not
	// exist; status.missingPolicies lists it.
	PolicyConfigPolicyNotFoundReason = "PolicyNotFound"

	// PolicyConfigUnknownParameterReason: config sets a parameter that the
	// policy does not declare; status.unknownParameters lists it.
	PolicyConfigUnknownParameterReason = "UnknownParameter"

	// PolicyConfigInvalidValueReason: a value does not match the type that
	// the policy declares for the parameter.
	PolicyConfigInvalidValueReason = "InvalidValue"
)

// Modes in which policies are evaluated.
const (
	ModeAudit       = "audit"
	ModeAdmission   = "admission"
	ModeTFAdmission = "tf-admission"
)
