namespace Tumbler.Core.Secrets;

/// <summary>
/// An error the Secrets Manager API reports to the caller: <see cref="ErrorCode"/> becomes the
/// wire <c>__type</c>. The message must never contain a secret value.
/// </summary>
public class ServiceException(string errorCode, string message) : Exception(message)
{
    public string ErrorCode { get; } = errorCode;

    /// <summary>True for errors the framework (not the modeled service) raises; they use a lower-case
    /// <c>message</c> member on the wire, as AWS does.</summary>
    public bool IsFrameworkError => ErrorCode is ErrorCodes.Validation or ErrorCodes.Serialization
        or ErrorCodes.UnknownOperation or ErrorCodes.Throttling or ErrorCodes.AccessDenied
        || ErrorCode.EndsWith("SignatureException", StringComparison.Ordinal)
        || ErrorCode is ErrorCodes.UnrecognizedClient or ErrorCodes.MissingAuthenticationToken or ErrorCodes.ExpiredToken;

    public static ServiceException NotFound(string message) => new(ErrorCodes.ResourceNotFound, message);
    public static ServiceException InvalidParameter(string message) => new(ErrorCodes.InvalidParameter, message);
    public static ServiceException InvalidRequest(string message) => new(ErrorCodes.InvalidRequest, message);
}

public static class ErrorCodes
{
    public const string ResourceNotFound = "ResourceNotFoundException";
    public const string InvalidParameter = "InvalidParameterException";
    public const string InvalidRequest = "InvalidRequestException";
    public const string ResourceExists = "ResourceExistsException";
    public const string LimitExceeded = "LimitExceededException";
    public const string EncryptionFailure = "EncryptionFailure";
    public const string DecryptionFailure = "DecryptionFailure";
    public const string InvalidNextToken = "InvalidNextTokenException";
    public const string MalformedPolicyDocument = "MalformedPolicyDocumentException";
    public const string PublicPolicy = "PublicPolicyException";
    public const string InternalServiceError = "InternalServiceError";
    public const string Validation = "ValidationException";
    public const string Serialization = "SerializationException";
    public const string UnknownOperation = "UnknownOperationException";
    public const string AccessDenied = "AccessDeniedException";
    public const string Throttling = "ThrottlingException";
    public const string InvalidSignature = "InvalidSignatureException";
    public const string IncompleteSignature = "IncompleteSignatureException";
    public const string UnrecognizedClient = "UnrecognizedClientException";
    public const string ExpiredToken = "ExpiredTokenException";
    public const string MissingAuthenticationToken = "MissingAuthenticationTokenException";
}
