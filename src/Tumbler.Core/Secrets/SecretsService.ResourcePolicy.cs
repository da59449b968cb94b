using Tumbler.Core.Access;

namespace Tumbler.Core.Secrets;

/// <summary>Resource policies on secrets (spec §2.17-2.20): stored exactly as given, enforced by <see cref="AccessControl"/>.</summary>
public sealed partial class SecretsService
{
    private const int MaxResourcePolicyLength = 20480;

    public async Task<SecretIdentity> PutResourcePolicyAsync(PutResourcePolicyRequest request, CallContext context, CancellationToken ct)
    {
        new RequestValidator()
            .Required(request.SecretId, "secretId").Length(request.SecretId, "secretId", 1, 2048)
            .Required(request.ResourcePolicy, "resourcePolicy").Length(request.ResourcePolicy, "resourcePolicy", 1, MaxResourcePolicyLength)
            .ThrowIfInvalid();
        CheckSecretIdSyntax(request.SecretId!);
        PolicyDocument policy;
        try
        {
            policy = PolicyDocument.Parse(request.ResourcePolicy!, PolicyKind.Resource);
        }
        catch (MalformedPolicyException e)
        {
            throw new ServiceException(ErrorCodes.MalformedPolicyDocument, $"This resource policy contains a syntax error: {e.Message}");
        }
        if (request.BlockPublicPolicy == true && ResourcePolicyChecks.GrantsPublicAccess(policy))
        {
            throw new ServiceException(ErrorCodes.PublicPolicy,
                "The BlockPublicPolicy parameter is set to true, and the resource policy did not prevent broad access to the secret.");
        }
        return await store.WriteAsync(async writer =>
        {
            var secret = await FindForWriteAsync(writer, request.SecretId!, context, Demand.SecretsManager("PutResourcePolicy"));
            secret.ResourcePolicy = request.ResourcePolicy;
            await writer.UpdateSecretAsync(secret);
            return Identity(secret);
        }, ct);
    }

    public async Task<GetResourcePolicyResponse> GetResourcePolicyAsync(SecretIdRequest request, CallContext context, CancellationToken ct)
    {
        ValidateSecretId(request.SecretId);
        var secret = await FindAsync(request.SecretId!, context, Demand.SecretsManager("GetResourcePolicy"), ct);
        return new GetResourcePolicyResponse { ARN = secret.Arn, Name = secret.Name, ResourcePolicy = secret.ResourcePolicy };
    }

    public async Task<SecretIdentity> DeleteResourcePolicyAsync(SecretIdRequest request, CallContext context, CancellationToken ct)
    {
        ValidateSecretId(request.SecretId);
        return await store.WriteAsync(async writer =>
        {
            var secret = await FindForWriteAsync(writer, request.SecretId!, context, Demand.SecretsManager("DeleteResourcePolicy"));
            if (secret.ResourcePolicy is not null)
            {
                secret.ResourcePolicy = null;
                await writer.UpdateSecretAsync(secret);
            }
            return Identity(secret);
        }, ct);
    }

    public async Task<ValidateResourcePolicyResponse> ValidateResourcePolicyAsync(ValidateResourcePolicyRequest request, CallContext context, CancellationToken ct)
    {
        new RequestValidator()
            .Length(request.SecretId, "secretId", 1, 2048)
            .Required(request.ResourcePolicy, "resourcePolicy").Length(request.ResourcePolicy, "resourcePolicy", 1, MaxResourcePolicyLength)
            .ThrowIfInvalid();
        var demand = Demand.SecretsManager("ValidateResourcePolicy");
        if (request.SecretId is not null)
        {
            CheckSecretIdSyntax(request.SecretId);
            await FindAsync(request.SecretId, context, demand, ct);
        }
        else
        {
            Authorize(context, demand, "*", null);
        }
        var findings = ResourcePolicyChecks.Validate(request.ResourcePolicy!);
        return new ValidateResourcePolicyResponse
        {
            PolicyValidationPassed = findings.Count == 0,
            ValidationErrors = [.. findings.Select(f => new ValidationErrorsEntry { CheckName = f.CheckName, ErrorMessage = f.ErrorMessage })],
        };
    }
}
