export { TemplateError, type TemplateErrorCode, type TemplateErrorDetails } from './template-error.ts';
export {
  renderDeep,
  renderDeepWithSecrets,
  renderTemplate,
  renderTemplateWithSecrets,
  templateVariables,
  type RenderResult,
  type TemplateJob,
  type TemplateRun,
  type TemplateScope,
  type TemplateTrigger,
  type TemplateVar,
} from './render-template.ts';
export { mergeVariables } from './merge-variables.ts';
